import CLibcrypto
public import PortcullisCore

/// A new signing key as JWKs (`portcullis keygen`).
public struct GeneratedKey: Sendable {
    public let algorithm: JWSAlgorithm
    public let keyID: String
    /// Every member, private ones included: `alg`, `use: "sig"` and `kid` beside the key's numbers.
    public let privateJWK: JSONValue
    /// The same without its private members; nil for an HMAC secret, which has no public half.
    public let publicJWK: JSONValue?
}

/// Makes signing keys with OpenSSL: RSA 2048 bits, the NIST curve of an ES algorithm, Ed25519, or an HMAC
/// secret as long as the hash from RAND_bytes.
public enum KeyGenerator {
    public static let rsaBits = 2048

    /// A new key for `algorithm`. Without `keyID`, the key's RFC 7638 thumbprint names it: stable for the
    /// key, different for every other key.
    public static func generate(_ algorithm: JWSAlgorithm, keyID: String? = nil) throws(SigningError) -> GeneratedKey {
        var members: [String: JSONValue]
        switch algorithm.family {
        case .rsaPKCS1, .rsaPSS:
            members = try rsaMembers()
        case .ecdsa(let curve):
            members = try ecMembers(curve: curve)
        case .eddsa:
            members = try ed25519Members()
        case .hmac:
            members = ["kty": "oct", "k": .string(Base64URL.encode(try randomBytes(algorithm.digest!.byteCount)))]
        }
        guard let keyID = keyID ?? JWKThumbprint.sha256(of: .object(members)) else {
            throw SigningError("the new key has no thumbprint")
        }
        members["alg"] = .string(algorithm.rawValue)
        members["use"] = "sig"
        members["kid"] = .string(keyID)
        let privateJWK = JSONValue.object(members)
        // The key is read back the way `portcullis token` reads it, so that what is written is known to sign
        // tokens the published half verifies.
        let signer = try JWKSigner(privateJWK: privateJWK)
        return GeneratedKey(
            algorithm: algorithm, keyID: keyID, privateJWK: privateJWK, publicJWK: signer.publicJWK)
    }

    private static func rsaMembers() throws(SigningError) -> [String: JSONValue] {
        let key = try generateKey(type: "RSA") { EVP_PKEY_CTX_set_rsa_keygen_bits($0, Int32(rsaBits)) == 1 }
        defer { EVP_PKEY_free(key) }
        let names: [(member: String, parameter: UnsafePointer<CChar>)] = [
            ("n", portcullis_PARAM_RSA_N), ("e", portcullis_PARAM_RSA_E), ("d", portcullis_PARAM_RSA_D),
            ("p", portcullis_PARAM_RSA_FACTOR1), ("q", portcullis_PARAM_RSA_FACTOR2),
            ("dp", portcullis_PARAM_RSA_EXPONENT1), ("dq", portcullis_PARAM_RSA_EXPONENT2),
            ("qi", portcullis_PARAM_RSA_COEFFICIENT1),
        ]
        var members: [String: JSONValue] = ["kty": "RSA"]
        for (member, parameter) in names {
            // Base64urlUInt (RFC 7518 §2): the shortest big-endian form.
            members[member] = .string(Base64URL.encode(try bigNumber(parameter, of: key, length: nil)))
        }
        return members
    }

    private static func ecMembers(curve: EllipticCurve) throws(SigningError) -> [String: JSONValue] {
        let key = try generateKey(type: "EC") { EVP_PKEY_CTX_set_group_name($0, curve.rawValue) == 1 }
        defer { EVP_PKEY_free(key) }
        // RFC 7518 §6.2.1.2, §6.2.2.1: x, y and d are each exactly as long as a coordinate.
        let length = curve.coordinateByteCount
        return [
            "kty": "EC", "crv": .string(curve.rawValue),
            "x": .string(Base64URL.encode(try bigNumber(portcullis_PARAM_EC_PUB_X, of: key, length: length))),
            "y": .string(Base64URL.encode(try bigNumber(portcullis_PARAM_EC_PUB_Y, of: key, length: length))),
            "d": .string(Base64URL.encode(try bigNumber(portcullis_PARAM_PRIV_KEY, of: key, length: length))),
        ]
    }

    private static func ed25519Members() throws(SigningError) -> [String: JSONValue] {
        let key = try generateKey(type: "ED25519") { _ in true }
        defer { EVP_PKEY_free(key) }
        var publicKey = [UInt8](repeating: 0, count: 32)
        var privateKey = [UInt8](repeating: 0, count: 32)
        var publicLength = publicKey.count
        var privateLength = privateKey.count
        guard EVP_PKEY_get_raw_public_key(key, &publicKey, &publicLength) == 1, publicLength == 32,
            EVP_PKEY_get_raw_private_key(key, &privateKey, &privateLength) == 1, privateLength == 32
        else { throw SigningError("OpenSSL could not export the Ed25519 key: \(OpenSSLError.drain())") }
        return [
            "kty": "OKP", "crv": "Ed25519", "x": .string(Base64URL.encode(publicKey)),
            "d": .string(Base64URL.encode(privateKey)),
        ]
    }

    private static func generateKey(
        type: String, configure: (OpaquePointer?) -> Bool
    ) throws(SigningError) -> OpaquePointer {
        let context = EVP_PKEY_CTX_new_from_name(nil, type, nil)
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard context != nil, EVP_PKEY_keygen_init(context) == 1, configure(context),
            EVP_PKEY_generate(context, &key) == 1, let key
        else { throw SigningError("OpenSSL could not generate the \(type) key: \(OpenSSLError.drain())") }
        return key
    }

    /// A numeric key parameter, big-endian: `length` bytes with leading zeros, or the shortest form.
    private static func bigNumber(
        _ name: UnsafePointer<CChar>, of key: OpaquePointer, length: Int?
    ) throws(SigningError) -> [UInt8] {
        var number: OpaquePointer?
        guard EVP_PKEY_get_bn_param(key, name, &number) == 1, let number else {
            throw SigningError("OpenSSL could not export \(String(cString: name)): \(OpenSSLError.drain())")
        }
        defer { BN_clear_free(number) }
        let count = length ?? max(1, (Int(BN_num_bits(number)) + 7) / 8)
        var bytes = [UInt8](repeating: 0, count: count)
        guard BN_bn2binpad(number, &bytes, Int32(count)) == count else {
            throw SigningError("\(String(cString: name)) is longer than \(count) bytes")
        }
        return bytes
    }

    static func randomBytes(_ count: Int) throws(SigningError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else {
            throw SigningError("OpenSSL has no randomness: \(OpenSSLError.drain())")
        }
        return bytes
    }
}

/// JWK thumbprints (RFC 7638).
public enum JWKThumbprint {
    /// The base64url SHA-256 thumbprint of `jwk`, or nil when a member it needs is missing or its key type
    /// is unknown.
    public static func sha256(of jwk: JSONValue) -> String? {
        let required: [String]
        switch jwk["kty"]?.stringValue {
        case "RSA": required = ["e", "kty", "n"]
        case "EC": required = ["crv", "kty", "x", "y"]
        case "OKP": required = ["crv", "kty", "x"]
        case "oct": required = ["k", "kty"]
        default: return nil
        }
        var members: [String: JSONValue] = [:]
        for name in required {
            guard let value = jwk[name], value.stringValue != nil else { return nil }
            members[name] = value
        }
        // RFC 7638 §3.2's form is what `compactJSON` writes: members sorted by name, no whitespace. The
        // values are base64url and names, plain ASCII, so its escaping never applies.
        let text = Array(JSONValue.object(members).compactJSON.utf8)
        var digest = [UInt8](repeating: 0, count: 32)
        SHA256(text, text.count, &digest)
        return Base64URL.encode(digest)
    }
}
