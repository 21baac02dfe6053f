/// The RFC 7519 claim checks a provider applies after the signature verifies. Time is passed in, never read.
public struct ClaimRules: Sendable, Hashable {
    /// `iss` must equal this, when set.
    public var issuer: String?
    /// `aud` must contain one of these, when any are set; a token without `aud` is then refused.
    public var audiences: [String]
    /// Whether a token without `exp` is refused.
    public var requireExpiry: Bool
    /// Tolerance, in seconds, for clocks that disagree; applies to `exp`, `nbf` and `iat`.
    public var clockSkew: Double

    public init(issuer: String? = nil, audiences: [String] = [], requireExpiry: Bool = true, clockSkew: Double = 30) {
        self.issuer = issuer
        self.audiences = audiences
        self.requireExpiry = requireExpiry
        self.clockSkew = clockSkew
    }

    /// The latest NumericDate accepted: 9999-12-31T23:59:59Z. Anything larger is an attempt, or a bug.
    public static let latestNumericDate: Double = 253_402_300_799

    /// Checks the claims at `now` (seconds since the epoch). Returns the audience that matched, if the
    /// rules name any.
    public func check(_ claims: [String: JSONValue], now: Double) throws(TokenRefusal) -> String? {
        let expiry = try Self.numericDate("exp", in: claims)
        if let expiry {
            // RFC 7519 §4.1.4: the current time must be before exp.
            guard now < expiry + clockSkew else { throw TokenRefusal(.expired, "JWT expired") }
        } else if requireExpiry {
            throw TokenRefusal(.missingExpiry, "JWT has no \"exp\" claim")
        }
        if let notBefore = try Self.numericDate("nbf", in: claims), now + clockSkew < notBefore {
            throw TokenRefusal(.notYetValid, "JWT not yet valid")
        }
        if let issuedAt = try Self.numericDate("iat", in: claims), issuedAt > now + clockSkew {
            throw TokenRefusal(.issuedInFuture, "JWT issued at future")
        }
        if let issuer {
            switch claims["iss"] {
            case .string(let tokenIssuer) where tokenIssuer == issuer: break
            case .string, nil: throw TokenRefusal(.issuerMismatch, "JWT issuer is not accepted")
            default: throw TokenRefusal(.invalidClaim, "JWT claim \"iss\" is not a string")
            }
        }
        return try matchAudience(claims["aud"])
    }

    private func matchAudience(_ claim: JSONValue?) throws(TokenRefusal) -> String? {
        let notAString = TokenRefusal(.invalidClaim, "JWT claim \"aud\" is not a string or an array of strings")
        var matched: String?
        switch claim {
        case nil: break
        case .string(let audience):
            if audiences.contains(audience) { matched = audience }
        case .array(let elements):
            for element in elements {
                guard case .string(let audience) = element else { throw notAString }
                if matched == nil, audiences.contains(audience) { matched = audience }
            }
        default:
            throw notAString
        }
        guard !audiences.isEmpty else { return nil }
        guard let matched else { throw TokenRefusal(.audienceMismatch, "JWT not in audience") }
        return matched
    }

    /// A registered date claim: absent, or a JSON number in [0, `latestNumericDate`].
    static func numericDate(_ name: String, in claims: [String: JSONValue]) throws(TokenRefusal) -> Double? {
        guard let value = claims[name] else { return nil }
        guard case .number(let number) = value else {
            throw TokenRefusal(.invalidClaim, "JWT claim \"\(name)\" is not a number")
        }
        let seconds = number.doubleValue
        guard seconds.isFinite, seconds >= 0, seconds <= latestNumericDate else {
            throw TokenRefusal(.invalidClaim, "JWT claim \"\(name)\" is out of range")
        }
        return seconds
    }
}
