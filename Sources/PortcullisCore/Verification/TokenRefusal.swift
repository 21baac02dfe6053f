/// Why a token was refused: a stable code for metrics, logs and `{"error": …}` bodies, and a short message
/// for people (used as RFC 6750's `error_description`).
///
/// Messages never contain any part of the token: they go to clients and logs alike.
public struct TokenRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable, snake_case reason codes.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// Not a well-formed compact JWS / JWT: parts, base64url, JSON, size, nesting, header fields.
        case malformed
        /// `alg` is `none`, unknown, outside the provider's allow-list, or not one the selected key accepts.
        case algorithmNotAllowed = "algorithm_not_allowed"
        /// `crit` names an extension Portcullis does not implement, or `b64` is false.
        case unsupportedCriticalHeader = "unsupported_critical_header"
        /// The token names a `kid` that no held key has. The key-source layer refetches on this one.
        case unknownKid = "unknown_kid"
        /// No `kid`, and no held key is compatible with `alg`.
        case noMatchingKey = "no_matching_key"
        /// The signature does not verify with the selected key(s).
        case badSignature = "bad_signature"
        /// `exp` is missing while the provider requires it.
        case missingExpiry = "missing_exp"
        /// `exp` is at or before now (minus the clock skew).
        case expired
        /// `nbf` is after now (plus the clock skew).
        case notYetValid = "not_yet_valid"
        /// `iat` is after now (plus the clock skew).
        case issuedInFuture = "issued_in_future"
        /// A registered claim has the wrong type or an impossible value.
        case invalidClaim = "invalid_claim"
        /// `iss` differs from the provider's issuer.
        case issuerMismatch = "issuer_mismatch"
        /// `aud` is missing or holds none of the provider's audiences.
        case audienceMismatch = "audience_mismatch"
        /// No provider claims this token (key-source layer).
        case unknownProvider = "unknown_provider"
        /// More than one provider claims this token (key-source layer).
        case ambiguousProvider = "ambiguous_provider"
        /// The provider holds no usable key set right now (key-source layer).
        case keysUnavailable = "keys_unavailable"
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(reason.rawValue): \(message)" }
}

extension TokenRefusal {
    static func malformed(_ message: String) -> TokenRefusal { TokenRefusal(.malformed, message) }
}
