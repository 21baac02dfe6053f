import CLibcrypto
import PortcullisCore

/// Verifies RS*, PS*, ES* and EdDSA signatures with one EVP_PKEY, owned for the key's lifetime.
///
/// RSA and ECDSA hash the signing input with OpenSSL's one-shot SHA-2 and verify the digest with
/// `EVP_PKEY_verify` on a context prepared once per algorithm and reused: setting a context up costs more
/// than an RSA-2048 verification itself. Ed25519 hashes internally, so it uses one-shot `EVP_DigestVerify`.
final class EVPVerifier: SignatureVerifier, Sendable {
    private let key: PKey
    /// Ready contexts for each algorithm this key can verify (RSA: RS*/PS*; EC: its ES*).
    private let contexts: [JWSAlgorithm: VerifyContextPool]

    init(key: OpaquePointer) {
        let key = PKey(pointer: key)
        self.key = key
        var contexts: [JWSAlgorithm: VerifyContextPool] = [:]
        let keyType = EVP_PKEY_get_base_id(key.pointer)
        for algorithm in JWSAlgorithm.allCases {
            let fits: Bool =
                switch algorithm.family {
                case .rsaPKCS1, .rsaPSS: keyType == EVP_PKEY_RSA
                case .ecdsa: keyType == EVP_PKEY_EC
                case .eddsa, .hmac: false
                }
            if fits { contexts[algorithm] = VerifyContextPool(key: key, algorithm: algorithm) }
        }
        self.contexts = contexts
    }

    func isValidSignature(
        _ signature: UnsafeRawBufferPointer,
        of signingInput: UnsafeRawBufferPointer,
        algorithm: JWSAlgorithm
    ) -> Bool {
        switch algorithm.family {
        case .eddsa:
            return digestVerifyEd25519(signature, signingInput)
        case .ecdsa(let curve):
            // JWS carries raw r‖s; OpenSSL verifies DER. Wrong lengths and r, s outside [1, n-1] stop here.
            guard let der = ECDSASignature.derEncoding(ofRaw: signature, curve: curve) else { return false }
            return der.withUnsafeBytes { verifyDigest(of: signingInput, signature: $0, algorithm: algorithm) }
        case .rsaPKCS1, .rsaPSS:
            return verifyDigest(of: signingInput, signature: signature, algorithm: algorithm)
        case .hmac:
            return false
        }
    }

    private func verifyDigest(
        of message: UnsafeRawBufferPointer,
        signature: UnsafeRawBufferPointer,
        algorithm: JWSAlgorithm
    ) -> Bool {
        guard let pool = contexts[algorithm], let digest = algorithm.digest else { return false }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { hash in
            let bytes = message.baseAddress?.assumingMemoryBound(to: UInt8.self)
            switch digest {
            case .sha256: SHA256(bytes, message.count, hash.baseAddress)
            case .sha384: SHA384(bytes, message.count, hash.baseAddress)
            case .sha512: SHA512(bytes, message.count, hash.baseAddress)
            }
            return pool.withContext { context in
                let result = EVP_PKEY_verify(
                    context, signature.baseAddress?.assumingMemoryBound(to: UInt8.self), signature.count,
                    hash.baseAddress, digest.byteCount)
                if result != 1 { ERR_clear_error() }
                return result == 1
            } ?? false
        }
    }

    private func digestVerifyEd25519(_ signature: UnsafeRawBufferPointer, _ message: UnsafeRawBufferPointer) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit_ex(context, nil, nil, nil, nil, key.pointer, nil) == 1 else {
            ERR_clear_error()
            return false
        }
        let result = EVP_DigestVerify(
            context,
            signature.baseAddress?.assumingMemoryBound(to: UInt8.self), signature.count,
            message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        if result != 1 { ERR_clear_error() }
        return result == 1
    }
}

/// An EVP_PKEY, freed with its last reference.
final class PKey: @unchecked Sendable {
    // @unchecked: never mutated after init; OpenSSL 3 allows concurrent verification with one key.
    let pointer: OpaquePointer

    init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }
}

/// Verification contexts for one key and one algorithm, set up once (padding, salt length, digest) and
/// lent to one thread at a time. At most `capacity` idle contexts are kept; a burst beyond that makes
/// temporary ones.
final class VerifyContextPool: @unchecked Sendable {
    // @unchecked: `idle` is only touched under `lock`; a context is used by one thread at a time.
    private let key: PKey
    private let algorithm: JWSAlgorithm
    private let lock = Lock()
    private var idle: [OpaquePointer] = []
    private let capacity = 16

    init(key: PKey, algorithm: JWSAlgorithm) {
        self.key = key
        self.algorithm = algorithm
        idle.reserveCapacity(capacity)
    }

    deinit {
        idle.forEach(EVP_PKEY_CTX_free)
    }

    func withContext<R>(_ body: (OpaquePointer) -> R) -> R? {
        guard let context = lock.withLock({ idle.popLast() }) ?? makeContext() else { return nil }
        let result = body(context)
        let kept = lock.withLock { () -> Bool in
            guard idle.count < capacity else { return false }
            idle.append(context)
            return true
        }
        if !kept { EVP_PKEY_CTX_free(context) }
        return result
    }

    private func makeContext() -> OpaquePointer? {
        guard let digest = algorithm.digest.map(Digests.md(_:)),
            let context = EVP_PKEY_CTX_new_from_pkey(nil, key.pointer, nil)
        else { return nil }
        var ok = EVP_PKEY_verify_init(context) == 1 && EVP_PKEY_CTX_set_signature_md(context, digest.md) == 1
        if ok, algorithm.family == .rsaPSS {
            // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash.
            ok =
                EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PSS_PADDING) == 1
                && EVP_PKEY_CTX_set_rsa_pss_saltlen(context, Int32(digest.length)) == 1
                && EVP_PKEY_CTX_set_rsa_mgf1_md(context, digest.md) == 1
        } else if ok, algorithm.family == .rsaPKCS1 {
            ok = EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1
        }
        guard ok else {
            ERR_clear_error()
            EVP_PKEY_CTX_free(context)
            return nil
        }
        return context
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

/// SHA-256 for callers outside verification (the token cache's key), with the digest fetched once: OpenSSL 3's
/// one-shot `SHA256()` looks the algorithm up again on every call.
public enum SHA256Hash {
    /// The 32-byte digest of `bytes`, as four words in memory order; nil if libcrypto fails (out of memory).
    public static func words(of bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64)? {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let done = withUnsafeMutableBytes(of: &words) { digest in
            var length: UInt32 = 0
            return EVP_Digest(
                bytes.baseAddress, bytes.count, digest.baseAddress?.assumingMemoryBound(to: UInt8.self), &length,
                Digests.sha256.md, nil) == 1 && length == 32
        }
        return done ? words : nil
    }
}
