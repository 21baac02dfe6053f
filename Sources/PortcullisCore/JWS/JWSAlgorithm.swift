/// The JWS signature algorithms Portcullis verifies (RFC 7518 §3, RFC 8037 §3.1).
///
/// `none` is deliberately absent: it cannot be represented, so it can never be accepted.
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case eddsa = "EdDSA"

    /// The kind of key an algorithm needs. The key, never the token, decides which family is possible.
    public enum Family: Sendable, Hashable {
        case hmac
        case rsaPKCS1
        case rsaPSS
        case ecdsa(EllipticCurve)
        case eddsa
    }

    public var family: Family {
        switch self {
        case .hs256, .hs384, .hs512: .hmac
        case .rs256, .rs384, .rs512: .rsaPKCS1
        case .ps256, .ps384, .ps512: .rsaPSS
        case .es256: .ecdsa(.p256)
        case .es384: .ecdsa(.p384)
        case .es512: .ecdsa(.p521)
        case .eddsa: .eddsa
        }
    }

    /// The hash the algorithm uses; nil for EdDSA, which hashes internally.
    public var digest: Digest? {
        switch self {
        case .hs256, .rs256, .ps256, .es256: .sha256
        case .hs384, .rs384, .ps384, .es384: .sha384
        case .hs512, .rs512, .ps512, .es512: .sha512
        case .eddsa: nil
        }
    }

    /// SHA-2 digests used by the algorithms above.
    public enum Digest: Sendable, Hashable {
        case sha256, sha384, sha512

        public var byteCount: Int {
            switch self {
            case .sha256: 32
            case .sha384: 48
            case .sha512: 64
            }
        }
    }
}

/// The NIST curves JWS uses for ECDSA (RFC 7518 §6.2.1.1).
public enum EllipticCurve: String, Sendable, Hashable, CaseIterable {
    case p256 = "P-256"
    case p384 = "P-384"
    case p521 = "P-521"

    /// Bytes in one coordinate, and in each of r and s of a JWS signature.
    public var coordinateByteCount: Int {
        switch self {
        case .p256: 32
        case .p384: 48
        case .p521: 66
        }
    }

    /// The group order n, big-endian, `coordinateByteCount` bytes long.
    public var order: [UInt8] {
        switch self {
        case .p256: Self.p256Order
        case .p384: Self.p384Order
        case .p521: Self.p521Order
        }
    }

    private static let p256Order = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
    private static let p384Order = hex(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973")
    private static let p521Order = hex(
        "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
            + "fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409")

    private static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            bytes.append(UInt8(Self.nibble(high) << 4 | Self.nibble(low)))
        }
        return bytes
    }

    private static func nibble(_ char: UInt8) -> UInt8 {
        char <= UInt8(ascii: "9") ? char - UInt8(ascii: "0") : char - UInt8(ascii: "a") + 10
    }
}
