/// Chooses which provider judges a token, before anything about it is trusted.
///
/// - A token whose unverified `iss` equals a provider's configured issuer goes to that provider, and its
///   signature is then checked with that provider's keys only.
/// - Otherwise the providers without an issuer are candidates: the only one, or the one holding the
///   token's `kid`.
/// - No candidate, or more than one, is a refusal with its own reason.
public struct ProviderRouter: Sendable {
    /// The issuer each provider declares, in configuration order (nil: none declared).
    public let issuers: [String?]

    public init(issuers: [String?]) {
        self.issuers = issuers
    }

    /// Whether routing needs the token's unverified `iss` (only when some provider declares one).
    public var needsIssuer: Bool { issuers.contains { $0 != nil } }

    public enum Route: Sendable, Hashable {
        /// Judge the token with this provider.
        case provider(Int)
        /// No candidate holds the token's `kid`: refetch these providers' keys, then route again.
        case refetch([Int])
        case refused(TokenRefusal)
    }

    /// - Parameters:
    ///   - issuer: the token's unverified `iss`, when it is a string.
    ///   - keyID: the token's `kid`.
    ///   - holdsKey: whether provider `index` currently holds a key with this id.
    public func route(issuer: String?, keyID: String?, holdsKey: (Int, String) -> Bool) -> Route {
        if let issuer {
            let matches = issuers.indices.filter { issuers[$0] == issuer }
            if matches.count == 1 { return .provider(matches[0]) }
            if matches.count > 1 {
                return .refused(TokenRefusal(.ambiguousProvider, "More than one provider accepts the JWT's issuer"))
            }
        }
        let candidates = issuers.indices.filter { issuers[$0] == nil }
        switch candidates.count {
        case 0:
            return .refused(TokenRefusal(.unknownProvider, "No provider accepts the JWT's issuer"))
        case 1:
            return .provider(candidates[0])
        default:
            guard let keyID else {
                return .refused(
                    TokenRefusal(.ambiguousProvider, "The JWT has no kid and more than one provider could verify it"))
            }
            let holders = candidates.filter { holdsKey($0, keyID) }
            switch holders.count {
            case 0: return .refetch(candidates)
            case 1: return .provider(holders[0])
            default:
                return .refused(TokenRefusal(.ambiguousProvider, "More than one provider holds the JWT's kid"))
            }
        }
    }
}
