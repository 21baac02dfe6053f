import CLibcrypto
import PortcullisCore

/// Verifies RS*, PS*, ES* and EdDSA signatures with one EVP_PKEY, owned for the key's lifetime.
final class EVPVerifier: SignatureVerifier, @unchecked Sendable {
    // @unchecked: the key is never mutated after init; OpenSSL 3 allows concurrent verification with it.
    private let key: OpaquePointer

    init(key: OpaquePointer) {
        self.key = key
    }

    deinit {
        EVP_PKEY_free(key)
    }

    func isValidSignature(
        _ signature: UnsafeRawBufferPointer,
        of signingInput: UnsafeRawBufferPointer,
        algorithm: JWSAlgorithm
    ) -> Bool {
        switch algorithm.family {
        case .ecdsa(let curve):
            // JWS carries raw r‖s; OpenSSL verifies DER. Wrong lengths and r, s outside [1, n-1] stop here.
            guard let der = ECDSASignature.derEncoding(ofRaw: signature, curve: curve) else { return false }
            return der.withUnsafeBytes { digestVerify($0, signingInput, algorithm: algorithm) }
        default:
            return digestVerify(signature, signingInput, algorithm: algorithm)
        }
    }

    private func digestVerify(
        _ signature: UnsafeRawBufferPointer,
        _ message: UnsafeRawBufferPointer,
        algorithm: JWSAlgorithm
    ) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        let digest = algorithm.digest.map(Digests.md(_:))
        guard EVP_DigestVerifyInit_ex(context, &keyContext, digest?.name, nil, nil, key, nil) == 1 else {
            ERR_clear_error()
            return false
        }
        if algorithm.family == .rsaPSS, let digest {
            // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash.
            guard EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, Int32(digest.length)) == 1,
                EVP_PKEY_CTX_set_rsa_mgf1_md_name(keyContext, digest.name, nil) == 1
            else {
                ERR_clear_error()
                return false
            }
        }
        let result = EVP_DigestVerify(
            context,
            signature.baseAddress?.assumingMemoryBound(to: UInt8.self), signature.count,
            message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        if result != 1 { ERR_clear_error() }
        return result == 1
    }
}

/// Verifies HS256/384/512 tags. The comparison is constant-time (CRYPTO_memcmp).
final class HMACVerifier: SignatureVerifier, Sendable {
    private let secret: [UInt8]

    init(secret: [UInt8]) {
        self.secret = secret
    }

    func isValidSignature(
        _ signature: UnsafeRawBufferPointer,
        of signingInput: UnsafeRawBufferPointer,
        algorithm: JWSAlgorithm
    ) -> Bool {
        guard let digest = algorithm.digest, algorithm.family == .hmac, signature.count == digest.byteCount else {
            return false
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(EVP_MAX_MD_SIZE)) { tag in
            var tagLength: UInt32 = 0
            let ok = secret.withUnsafeBytes { key in
                HMAC(
                    Digests.md(digest).md, key.baseAddress, Int32(key.count),
                    signingInput.baseAddress?.assumingMemoryBound(to: UInt8.self), signingInput.count,
                    tag.baseAddress, &tagLength) != nil
            }
            guard ok, Int(tagLength) == signature.count else { return false }
            return CRYPTO_memcmp(tag.baseAddress, signature.baseAddress, signature.count) == 0
        }
    }
}

/// Digest handles fetched once: implicit fetches on every verification are slow in OpenSSL 3.
enum Digests {
    struct Handle: @unchecked Sendable {
        // @unchecked: EVP_MD objects are immutable and shared by OpenSSL itself.
        let md: OpaquePointer
        let name: String
        let length: Int
    }

    static let sha256 = fetch("SHA256", length: 32)
    static let sha384 = fetch("SHA384", length: 48)
    static let sha512 = fetch("SHA512", length: 64)

    static func md(_ digest: JWSAlgorithm.Digest) -> Handle {
        switch digest {
        case .sha256: sha256
        case .sha384: sha384
        case .sha512: sha512
        }
    }

    private static func fetch(_ name: String, length: Int) -> Handle {
        guard let md = EVP_MD_fetch(nil, name, nil) else { fatalError("libcrypto has no \(name)") }
        return Handle(md: md, name: name, length: length)
    }
}
