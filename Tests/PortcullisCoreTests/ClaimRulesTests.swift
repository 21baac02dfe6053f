import PortcullisCore
import Testing

@Suite("Claim rules")
struct ClaimRulesTests {
    let now: Double = 1_700_000_000
    let rules = ClaimRules(clockSkew: 30)

    func check(_ claims: [String: JSONValue], _ rules: ClaimRules? = nil, at time: Double? = nil) throws -> String? {
        try (rules ?? self.rules).check(claims, now: time ?? now)
    }

    func number(_ value: Double) -> JSONValue { .number(JSONNumber(literal: String(value))) }

    @Test("exp: valid until exp + skew, expired from then on")
    func expiry() throws {
        let exp = now
        #expect(try check(["exp": number(exp)], at: exp + 29.999) == nil)
        #expect(throws: TokenRefusal(.expired, "JWT expired")) { try check(["exp": number(exp)], at: exp + 30) }
        let strict = ClaimRules(clockSkew: 0)
        #expect(try check(["exp": number(exp)], strict, at: exp - 0.001) == nil)
        #expect(throws: TokenRefusal(.expired, "JWT expired")) { try check(["exp": number(exp)], strict, at: exp) }
    }

    @Test("exp is required by default and can be made optional")
    func requireExpiry() throws {
        #expect(throws: TokenRefusal(.missingExpiry, "JWT has no \"exp\" claim")) { try check([:]) }
        #expect(try check([:], ClaimRules(requireExpiry: false)) == nil)
    }

    @Test("nbf: refused until nbf - skew")
    func notBefore() throws {
        let claims: [String: JSONValue] = ["exp": number(now + 3600), "nbf": number(now + 30)]
        #expect(try check(claims, at: now) == nil)
        #expect(throws: TokenRefusal(.notYetValid, "JWT not yet valid")) { try check(claims, at: now - 0.001) }
    }

    @Test("iat: not in the future beyond the skew")
    func issuedAt() throws {
        let claims: [String: JSONValue] = ["exp": number(now + 3600), "iat": number(now + 30)]
        #expect(try check(claims, at: now) == nil)
        #expect(throws: TokenRefusal(.issuedInFuture, "JWT issued at future")) { try check(claims, at: now - 0.001) }
    }

    @Test(
        "numeric dates must be JSON numbers in range",
        arguments: [
            JSONValue.string("1700000000"), .bool(true), .null, .array([1]), .number(JSONNumber(literal: "-1")),
            .number(JSONNumber(literal: "1e300")), .number(JSONNumber(literal: "253402300800")),
        ])
    func numericDates(_ value: JSONValue) {
        for claim in ["exp", "nbf", "iat"] {
            var claims: [String: JSONValue] = ["exp": number(now + 60)]
            claims[claim] = value
            #expect { try check(claims) } throws: { ($0 as? TokenRefusal)?.reason == .invalidClaim }
        }
    }

    @Test("iss must equal the configured issuer")
    func issuer() throws {
        let rules = ClaimRules(issuer: "https://idp.example/", requireExpiry: false)
        #expect(try check(["iss": "https://idp.example/"], rules) == nil)
        #expect(throws: TokenRefusal(.issuerMismatch, "JWT issuer is not accepted")) {
            try check(["iss": "https://idp.example"], rules)
        }
        #expect(throws: TokenRefusal(.issuerMismatch, "JWT issuer is not accepted")) { try check([:], rules) }
        #expect { try check(["iss": 1], rules) } throws: { ($0 as? TokenRefusal)?.reason == .invalidClaim }
    }

    @Test("aud: string or array, must contain a configured audience, and the match is returned")
    func audience() throws {
        let rules = ClaimRules(audiences: ["api", "other"], requireExpiry: false)
        #expect(try check(["aud": "api"], rules) == "api")
        #expect(try check(["aud": ["x", "other", "api"]], rules) == "other")
        let mismatch = TokenRefusal(.audienceMismatch, "JWT not in audience")
        #expect(throws: mismatch) { try check(["aud": "x"], rules) }
        #expect(throws: mismatch) { try check(["aud": []], rules) }
        #expect(throws: mismatch) { try check([:], rules) }
        #expect { try check(["aud": ["api", 1]], rules) } throws: { ($0 as? TokenRefusal)?.reason == .invalidClaim }
        #expect { try check(["aud": 1], rules) } throws: { ($0 as? TokenRefusal)?.reason == .invalidClaim }
        // With no audiences configured, any aud passes and none is reported as matched.
        #expect(try check(["aud": "x"], ClaimRules(requireExpiry: false)) == nil)
    }
}
