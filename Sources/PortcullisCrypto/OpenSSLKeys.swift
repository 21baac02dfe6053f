import CLibcrypto
public import PortcullisCore

/// Builds OpenSSL key objects from validated JWK numbers. Each EVP_PKEY is made once, when a key set is
/// loaded, and shared read-only by every event loop (OpenSSL 3 keys are safe to use from many threads for
/// verification).
public struct OpenSSLVerifierFactory: SignatureVerifierFactory {
    public init() {}

    public func makeVerifier(for material: KeyMaterial) throws(KeyRejection) -> any SignatureVerifier {
        switch material {
        case .rsa(let modulus, let exponent):
            return try EVPVerifier(key: Self.rsaKey(modulus: modulus, exponent: exponent))
        case .ec(let curve, let x, let y):
            return try EVPVerifier(key: Self.ecKey(curve: curve, x: x, y: y))
        case .ed25519(let publicKey):
            guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, publicKey.count) else {
                throw KeyRejection("OpenSSL refused the Ed25519 key")
            }
            return EVPVerifier(key: key)
        case .oct(let secret):
            return HMACVerifier(secret: secret)
        }
    }

    private static func rsaKey(modulus: [UInt8], exponent: [UInt8]) throws(KeyRejection) -> OpaquePointer {
        let n = BN_bin2bn(modulus, Int32(modulus.count), nil)
        let e = BN_bin2bn(exponent, Int32(exponent.count), nil)
        defer {
            BN_free(n)
            BN_free(e)
        }
        return try fromData(type: "RSA") { builder in
            OSSL_PARAM_BLD_push_BN(builder, portcullis_PARAM_RSA_N, n) == 1
                && OSSL_PARAM_BLD_push_BN(builder, portcullis_PARAM_RSA_E, e) == 1
                ? OSSL_PARAM_BLD_to_param(builder) : nil
        }
    }

    private static func ecKey(curve: EllipticCurve, x: [UInt8], y: [UInt8]) throws(KeyRejection) -> OpaquePointer {
        let groupName: String =
            switch curve {
            case .p256: "prime256v1"
            case .p384: "secp384r1"
            case .p521: "secp521r1"
            }
        let point: [UInt8] = [0x04] + x + y  // uncompressed SEC 1 encoding
        let key = try fromData(type: "EC") { builder in
            // The builder keeps pointers to what is pushed until `to_param` copies it, so both buffers
            // stay alive across that call.
            groupName.withCString { name in
                point.withUnsafeBytes { pointBytes in
                    OSSL_PARAM_BLD_push_utf8_string(builder, portcullis_PARAM_GROUP_NAME, name, 0) == 1
                        && OSSL_PARAM_BLD_push_octet_string(
                            builder, portcullis_PARAM_PUB_KEY, pointBytes.baseAddress, pointBytes.count) == 1
                        ? OSSL_PARAM_BLD_to_param(builder) : nil
                }
            }
        }
        // Decoding the point already checks it; this makes the check explicit and independent of the
        // import path: a point off the curve (invalid-curve attacks) never becomes a key.
        let context = EVP_PKEY_CTX_new_from_pkey(nil, key, nil)
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_public_check(context) == 1 else {
            EVP_PKEY_free(key)
            ERR_clear_error()
            throw KeyRejection("EC point is not on \(curve.rawValue)")
        }
        return key
    }

    /// EVP_PKEY_fromdata for a public key, with parameters pushed onto a builder and converted by `build`.
    private static func fromData(
        type: String,
        build: (OpaquePointer?) -> UnsafeMutablePointer<OSSL_PARAM>?
    ) throws(KeyRejection) -> OpaquePointer {
        switch EVPKeyFromData.make(type: type, selection: portcullis_EVP_PKEY_PUBLIC_KEY, build: build) {
        case .success(let key): return key
        case .failure(let failure): throw KeyRejection(failure.message)
        }
    }
}

/// EVP_PKEY_fromdata with parameters pushed onto a builder by `build`: shared by the verification keys
/// (public) and the signing keys (key pairs).
enum EVPKeyFromData {
    struct Failure: Error {
        let message: String
    }

    /// - Parameter selection: `portcullis_EVP_PKEY_PUBLIC_KEY` or `portcullis_EVP_PKEY_KEYPAIR`.
    static func make(
        type: String, selection: Int32, build: (OpaquePointer?) -> UnsafeMutablePointer<OSSL_PARAM>?
    ) -> Result<OpaquePointer, Failure> {
        guard let builder = OSSL_PARAM_BLD_new() else { return .failure(Failure(message: "out of memory")) }
        defer { OSSL_PARAM_BLD_free(builder) }
        guard let params = build(builder) else {
            ERR_clear_error()
            return .failure(Failure(message: "OpenSSL refused the \(type) key parameters"))
        }
        defer { OSSL_PARAM_free(params) }
        let context = EVP_PKEY_CTX_new_from_name(nil, type, nil)
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard context != nil, EVP_PKEY_fromdata_init(context) == 1,
            EVP_PKEY_fromdata(context, &key, selection, params) == 1, let key
        else {
            return .failure(Failure(message: "OpenSSL refused the \(type) key: \(OpenSSLError.drain())"))
        }
        return .success(key)
    }
}
