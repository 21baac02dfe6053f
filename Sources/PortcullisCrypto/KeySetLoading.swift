public import Logging
public import PortcullisCore

extension KeySetLoader {
    /// A loader that builds OpenSSL keys.
    public static var openSSL: KeySetLoader { KeySetLoader(factory: OpenSSLVerifierFactory()) }

    /// Loads a JWKS and logs, once per key, every key it had to skip and why. The set is returned even
    /// when some keys were skipped; it may be empty.
    public func load(
        jwks bytes: some Collection<UInt8>,
        provider: String,
        logger: Logger
    ) throws(DocumentError) -> KeySet {
        let (keys, skipped) = try load(jwks: bytes)
        for key in skipped {
            logger.warning(
                "JWKS key skipped",
                metadata: [
                    "provider": "\(provider)", "key_index": "\(key.index)", "kid": "\(key.keyID ?? "-")",
                    "reason": "\(key.reason)",
                ])
        }
        return keys
    }
}
