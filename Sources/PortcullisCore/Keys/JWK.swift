/// Why one JWK was not turned into a verification key.
public struct KeyRejection: Error, Sendable, Hashable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// The public numbers of a key, validated but not yet handed to a crypto library.
public enum KeyMaterial: Sendable, Hashable {
    /// RSA modulus and public exponent, big-endian, without leading zeros.
    case rsa(modulus: [UInt8], exponent: [UInt8])
    /// An uncompressed point on a NIST curve; each coordinate is exactly the curve's length.
    case ec(EllipticCurve, x: [UInt8], y: [UInt8])
    /// An Ed25519 public key (RFC 8037).
    case ed25519(publicKey: [UInt8])
    /// An HMAC secret.
    case oct(secret: [UInt8])

    /// What the key is, without its numbers.
    public var keyType: KeyType {
        switch self {
        case .rsa(let modulus, _): .rsa(modulusBits: Self.bitLength(modulus))
        case .ec(let curve, _, _): .ec(curve)
        case .ed25519: .ed25519
        case .oct(let secret): .oct(byteCount: secret.count)
        }
    }

    static func bitLength(_ bigEndian: [UInt8]) -> Int {
        guard let first = bigEndian.first(where: { $0 != 0 }), let index = bigEndian.firstIndex(of: first) else {
            return 0
        }
        return (bigEndian.count - index - 1) * 8 + (8 - first.leadingZeroBitCount)
    }
}

/// What a key is, which alone decides the algorithms it can verify.
public enum KeyType: Sendable, Hashable, CustomStringConvertible {
    case rsa(modulusBits: Int)
    case ec(EllipticCurve)
    case ed25519
    case oct(byteCount: Int)

    /// Whether a key of this type can verify `algorithm`. An HMAC algorithm is possible only with an `oct`
    /// key, which is what defeats the RS256 → HS256 confusion attack.
    public func canVerify(_ algorithm: JWSAlgorithm) -> Bool {
        switch (self, algorithm.family) {
        case (.rsa, .rsaPKCS1), (.rsa, .rsaPSS), (.ed25519, .eddsa): true
        case (.ec(let keyCurve), .ecdsa(let algCurve)): keyCurve == algCurve
        // RFC 7518 §3.2: the key must be at least as long as the hash output.
        case (.oct(let byteCount), .hmac): byteCount >= algorithm.digest!.byteCount
        default: false
        }
    }

    public var description: String {
        switch self {
        case .rsa(let bits): "RSA \(bits)"
        case .ec(let curve): "EC \(curve.rawValue)"
        case .ed25519: "OKP Ed25519"
        case .oct(let count): "oct \(count * 8)"
        }
    }

    /// Symmetric keys must never sit beside public keys in one set (see `KeySetLoader`).
    public var isSymmetric: Bool {
        if case .oct = self { return true }
        return false
    }
}

/// A JSON Web Key (RFC 7517) checked against the rules for verification keys.
public struct JWK: Sendable, Hashable {
    public let keyID: String?
    /// The JWK's own `alg`: when present, the only algorithm the key accepts.
    public let algorithm: JWSAlgorithm?
    public let material: KeyMaterial

    /// Smallest RSA modulus accepted (RFC 7518 §3.3).
    public static let minimumRSABits = 2048
    /// Largest RSA modulus accepted: bigger keys only make verification slow.
    public static let maximumRSABits = 8192
    /// Smallest HMAC secret accepted: 256 bits, the minimum for HS256.
    public static let minimumSecretBytes = 32

    public init(json: JSONValue) throws(KeyRejection) {
        guard case .object(let members) = json else { throw KeyRejection("not a JSON object") }
        func string(_ name: String) throws(KeyRejection) -> String? {
            switch members[name] {
            case nil: return nil
            case .string(let value): return value
            default: throw KeyRejection("\"\(name)\" is not a string")
            }
        }
        func bytes(_ name: String) throws(KeyRejection) -> [UInt8] {
            guard let encoded = try string(name) else { throw KeyRejection("\"\(name)\" is missing") }
            guard let decoded = Base64URL.decode(encoded) else { throw KeyRejection("\"\(name)\" is not base64url") }
            return decoded
        }

        keyID = try string("kid")
        if let use = try string("use"), use != "sig" {
            throw KeyRejection("\"use\" is \"\(use)\", not \"sig\"")
        }
        if let operations = members["key_ops"] {
            guard case .array(let list) = operations, list.allSatisfy({ $0.stringValue != nil }) else {
                throw KeyRejection("\"key_ops\" is not an array of strings")
            }
            guard list.contains(.string("verify")) else { throw KeyRejection("\"key_ops\" does not allow \"verify\"") }
        }
        if let algName = try string("alg") {
            guard let algorithm = JWSAlgorithm(rawValue: algName) else {
                throw KeyRejection("\"alg\" \"\(algName)\" is not a supported signature algorithm")
            }
            self.algorithm = algorithm
        } else {
            self.algorithm = nil
        }

        guard let kty = try string("kty") else { throw KeyRejection("\"kty\" is missing") }
        switch kty {
        case "RSA":
            try Self.refusePrivateMembers(["d", "p", "q", "dp", "dq", "qi", "oth"], in: members)
            let modulus = Array(try bytes("n").drop(while: { $0 == 0 }))
            let exponent = Array(try bytes("e").drop(while: { $0 == 0 }))
            let bits = KeyMaterial.bitLength(modulus)
            guard bits >= Self.minimumRSABits else { throw KeyRejection("RSA modulus of \(bits) bits is under 2048") }
            guard bits <= Self.maximumRSABits else { throw KeyRejection("RSA modulus of \(bits) bits is over 8192") }
            guard modulus.last! & 1 == 1 else { throw KeyRejection("RSA modulus is even") }
            // e must be odd and at least 3; e = 1 makes every "signature" its own message.
            guard (1...8).contains(exponent.count), exponent.last! & 1 == 1, exponent != [1] else {
                throw KeyRejection("RSA public exponent is not acceptable")
            }
            guard !ROCAFingerprint.matches(modulus: modulus) else {
                throw KeyRejection("RSA modulus has the ROCA fingerprint (CVE-2017-15361)")
            }
            material = .rsa(modulus: modulus, exponent: exponent)
        case "EC":
            try Self.refusePrivateMembers(["d"], in: members)
            guard let curveName = try string("crv") else { throw KeyRejection("\"crv\" is missing") }
            guard let curve = EllipticCurve(rawValue: curveName) else {
                throw KeyRejection("curve \"\(curveName)\" is not supported")
            }
            let x = try bytes("x")
            let y = try bytes("y")
            guard x.count == curve.coordinateByteCount, y.count == curve.coordinateByteCount else {
                throw KeyRejection("EC coordinates are not \(curve.coordinateByteCount) bytes for \(curve.rawValue)")
            }
            material = .ec(curve, x: x, y: y)
        case "OKP":
            try Self.refusePrivateMembers(["d"], in: members)
            guard let curveName = try string("crv") else { throw KeyRejection("\"crv\" is missing") }
            guard curveName == "Ed25519" else { throw KeyRejection("OKP curve \"\(curveName)\" is not supported") }
            let x = try bytes("x")
            guard x.count == 32 else { throw KeyRejection("Ed25519 public key is not 32 bytes") }
            material = .ed25519(publicKey: x)
        case "oct":
            let secret = try bytes("k")
            guard secret.count >= Self.minimumSecretBytes else {
                throw KeyRejection("HMAC secret of \(secret.count * 8) bits is under 256")
            }
            material = .oct(secret: secret)
        default:
            throw KeyRejection("\"kty\" \"\(kty)\" is not supported")
        }

        if let algorithm, !material.keyType.canVerify(algorithm) {
            throw KeyRejection("\"alg\" \(algorithm.rawValue) does not fit a \(material.keyType) key")
        }
    }

    /// A published JWKS that carries private numbers has leaked its keys: anyone could sign with them.
    private static func refusePrivateMembers(_ names: [String], in members: [String: JSONValue]) throws(KeyRejection) {
        if names.contains(where: { members[$0] != nil }) {
            throw KeyRejection("contains private key material")
        }
    }
}
