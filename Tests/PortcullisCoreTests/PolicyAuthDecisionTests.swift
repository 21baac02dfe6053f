import PortcullisCore
import Testing

/// A denial's parts, for comparison (`VerifiedToken` is not Equatable, so `AuthDecision` is not either).
private struct Denial: Equatable, CustomStringConvertible {
    var status: Int
    var wwwAuthenticate: String?
    var error: String
    var message: String

    var description: String { "\(status) \(wwwAuthenticate ?? "-") \(error): \(message)" }
}

@Suite("Policy: authorization decisions")
struct PolicyAuthDecisionTests {
    static let token: Substring = "header.payload.signature"
    static let extracted = TokenExtraction.token(token, source: .authorizationBearer)

    static func verified(role: JSONValue? = "webuser", claims: [String: JSONValue] = ["sub": "u1"]) -> VerifiedToken {
        VerifiedToken(
            provider: "test", algorithm: .rs256, keyID: "k1", claims: claims, audience: "api", role: role)
    }

    static let expired = TokenRefusal(.expired, "JWT expired")

    private func denial(_ decision: AuthDecision) -> Denial? {
        guard case .deny(let status, let wwwAuthenticate, let error, let message) = decision else { return nil }
        return Denial(status: status, wwwAuthenticate: wwwAuthenticate, error: error, message: message)
    }

    /// Allowed without identity.
    private func isAnonymous(_ decision: AuthDecision) -> Bool {
        if case .allow(identity: .none) = decision { return true }
        return false
    }

    /// The identity of an allowed, authenticated request.
    private func identity(_ decision: AuthDecision) -> VerifiedToken? {
        guard case .allow(let identity) = decision else { return nil }
        return identity
    }

    /// Both steps, with a verifier that records what it was asked.
    private func decide(
        _ rule: AccessRule, _ extraction: TokenExtraction,
        _ outcome: Result<VerifiedToken, TokenRefusal> = .success(verified())
    ) async -> (decision: AuthDecision, verified: [Substring]) {
        var calls: [Substring] = []
        let decision = await AuthDecision.decide(rule: rule, extraction: extraction) { token in
            calls.append(token)
            return outcome
        }
        return (decision, calls)
    }

    // MARK: - auth: none

    @Test("auth none allows without looking at tokens")
    func none() async throws {
        let rule = try AccessRule(path: "/public/*", auth: .none)
        for extraction in [TokenExtraction.none, Self.extracted, .invalidRequest("More than one Authorization header")]
        {
            let (decision, calls) = await decide(rule, extraction, .failure(Self.expired))
            #expect(calls.isEmpty)
            #expect(isAnonymous(decision))
            guard case .decided(let early) = AuthDecision.evaluate(rule: rule, extraction: extraction) else {
                Issue.record("auth none must decide without verification")
                continue
            }
            #expect(isAnonymous(early))
        }
        // Even a verification outcome handed in is ignored: no identity comes from a none route.
        #expect(isAnonymous(AuthDecision.decide(rule: rule, verification: .success(Self.verified()))))
        #expect(isAnonymous(AuthDecision.decide(rule: rule, verification: .failure(Self.expired))))
    }

    // MARK: - No token

    @Test("no token on a required route: 401 with a bare Bearer challenge")
    func noTokenRequired() async throws {
        let (decision, calls) = await decide(try AccessRule(path: "/x"), .none)
        #expect(calls.isEmpty)
        #expect(
            denial(decision)
                == Denial(
                    status: 401, wwwAuthenticate: "Bearer", error: "token_required",
                    message: "Anonymous access is disabled"))
        // The fallback rule behaves the same.
        #expect(denial(await decide(.fallback, .none).decision)?.status == 401)
    }

    @Test("no token on an optional route: allowed, anonymous, even with roles and scopes")
    func noTokenOptional() async throws {
        for rule in [
            try AccessRule(path: "/x", auth: .optional),
            try AccessRule(path: "/x", auth: .optional, roles: ["admin"], scopes: ["read"]),
        ] {
            let (decision, calls) = await decide(rule, .none)
            #expect(calls.isEmpty)
            #expect(isAnonymous(decision))
        }
    }

    // MARK: - Invalid requests

    @Test("an invalid request is 400 invalid_request on optional and required routes")
    func invalidRequest() async throws {
        let reason = "More than one Authorization header"
        for auth in [AuthRequirement.optional, .required] {
            let (decision, calls) = await decide(try AccessRule(path: "/x", auth: auth), .invalidRequest(reason))
            #expect(calls.isEmpty)
            #expect(
                denial(decision)
                    == Denial(
                        status: 400,
                        wwwAuthenticate: #"Bearer error="invalid_request", error_description="\#(reason)""#,
                        error: "invalid_request", message: reason))
        }
    }

    // MARK: - Verification

    @Test("a valid token is verified once and becomes the identity")
    func validToken() async throws {
        for auth in [AuthRequirement.optional, .required] {
            let (decision, calls) = await decide(try AccessRule(path: "/x", auth: auth), Self.extracted)
            #expect(calls == [Self.token])
            let token = try #require(identity(decision))
            #expect(token.role == "webuser")
            #expect(token.provider == "test")
        }
    }

    @Test("evaluate asks for the extracted token to be verified")
    func evaluateAsksForVerification() throws {
        guard
            case .verify(let token) = AuthDecision.evaluate(
                rule: try AccessRule(path: "/x"), extraction: Self.extracted)
        else {
            Issue.record("expected .verify")
            return
        }
        #expect(token == Self.token)
    }

    @Test("an invalid token is 401 invalid_token with the refusal's message, on optional routes too")
    func invalidToken() async throws {
        for auth in [AuthRequirement.optional, .required] {
            let (decision, _) = await decide(
                try AccessRule(path: "/x", auth: auth), Self.extracted, .failure(Self.expired))
            #expect(
                denial(decision)
                    == Denial(
                        status: 401, wwwAuthenticate: #"Bearer error="invalid_token", error_description="JWT expired""#,
                        error: "expired", message: "JWT expired"))
        }
    }

    @Test("every refusal reason but keys_unavailable is a 401 with its code", arguments: TokenRefusal.Reason.allCases)
    func everyRefusal(reason: TokenRefusal.Reason) throws {
        let decision = AuthDecision.decide(
            rule: try AccessRule(path: "/x"), verification: .failure(TokenRefusal(reason, "Some message")))
        let denied = try #require(denial(decision))
        #expect(denied.error == reason.rawValue)
        #expect(denied.message == "Some message")
        if reason == .keysUnavailable {
            #expect(denied.status == 503)
            #expect(denied.wwwAuthenticate == nil)
        } else {
            #expect(denied.status == 401)
            #expect(denied.wwwAuthenticate == #"Bearer error="invalid_token", error_description="Some message""#)
        }
    }

    // MARK: - Roles and scopes

    @Test("a role not admitted is 403 insufficient_scope")
    func roleNotAdmitted() async throws {
        let rule = try AccessRule(path: "/admin/*", roles: ["admin"])
        let expected = Denial(
            status: 403,
            wwwAuthenticate:
                #"Bearer error="insufficient_scope", error_description="The token's role is not allowed here""#,
            error: "insufficient_role", message: "The token's role is not allowed here")
        for role: JSONValue? in ["webuser", nil, 1, ["reader"]] {
            let (decision, _) = await decide(rule, Self.extracted, .success(Self.verified(role: role)))
            #expect(denial(decision) == expected, "\(String(describing: role))")
        }
        for role: JSONValue in ["admin", ["reader", "admin"]] {
            let (decision, _) = await decide(rule, Self.extracted, .success(Self.verified(role: role)))
            #expect(identity(decision) != nil, "\(role)")
        }
    }

    @Test("roles apply on optional routes when a token is sent")
    func roleOnOptionalRoute() async throws {
        let rule = try AccessRule(path: "/x", auth: .optional, roles: ["admin"])
        let (decision, _) = await decide(rule, Self.extracted)
        #expect(denial(decision)?.status == 403)
    }

    @Test("a missing scope is 403 insufficient_scope, naming the required scopes")
    func missingScope() async throws {
        let rule = try AccessRule(path: "/x", scopes: ["read", "write"])
        let (denied, _) = await decide(rule, Self.extracted, .success(Self.verified(claims: ["scope": "read"])))
        #expect(
            denial(denied)
                == Denial(
                    status: 403,
                    wwwAuthenticate:
                        #"Bearer error="insufficient_scope", error_description="The token lacks a required scope", scope="read write""#,
                    error: "insufficient_scope", message: "The token lacks a required scope"))
        let (allowedDecision, _) = await decide(
            rule, Self.extracted, .success(Self.verified(claims: ["scope": "write read", "scp": ["x"]])))
        #expect(identity(allowedDecision) != nil)
    }

    @Test("the role is checked before the scopes")
    func roleBeforeScopes() async throws {
        let rule = try AccessRule(path: "/x", roles: ["admin"], scopes: ["read"])
        let (decision, _) = await decide(rule, Self.extracted, .success(Self.verified(role: "user", claims: [:])))
        #expect(denial(decision)?.error == "insufficient_role")
        let (scopeOnly, _) = await decide(rule, Self.extracted, .success(Self.verified(role: "admin", claims: [:])))
        #expect(denial(scopeOnly)?.error == "insufficient_scope")
    }

    // MARK: - WWW-Authenticate quoting

    @Test("error_description is always a valid quoted-string of the characters RFC 6750 allows")
    func quoting() throws {
        let hostile = "JWT claim \"exp\" is \\ not\r\nSet-Cookie: x=1\u{0}\u{7F} caf\u{E9} \u{1F600}"
        let decision = AuthDecision.decide(
            rule: try AccessRule(path: "/x"), verification: .failure(TokenRefusal(.invalidClaim, hostile)))
        let header = try #require(denial(decision)?.wwwAuthenticate)
        #expect(
            header
                == #"Bearer error="invalid_token", error_description="JWT claim 'exp' is ? not??Set-Cookie: x=1?? caf? ?""#
        )
        let prefix = #"Bearer error="invalid_token", error_description=""#
        let content = header.dropFirst(prefix.count).dropLast()
        #expect(
            content.unicodeScalars.allSatisfy { scalar in
                (0x20...0x7E).contains(scalar.value) && scalar != "\"" && scalar != "\\"
            })
        // The body keeps the message as it was, JSON-escaped.
        #expect(denial(decision)?.message == hostile)
    }

    @Test("a refusal message with quotes, as the claim rules write them")
    func claimMessageQuotes() throws {
        let decision = AuthDecision.decide(
            rule: try AccessRule(path: "/x"),
            verification: .failure(TokenRefusal(.invalidClaim, "JWT claim \"exp\" is not a number")))
        #expect(
            denial(decision)?.wwwAuthenticate
                == #"Bearer error="invalid_token", error_description="JWT claim 'exp' is not a number""#)
    }

    // MARK: - Bodies

    @Test("allow has no body")
    func allowBody() {
        #expect(AuthDecision.allow(identity: nil).responseBody() == nil)
        #expect(AuthDecision.allow(identity: Self.verified()).responseBody(errorFormat: .postgrest) == nil)
    }

    @Test("the default body is {error, message}")
    func portcullisBody() {
        let decision = AuthDecision.deny(
            status: 401, wwwAuthenticate: nil, error: "invalid_claim", message: "JWT claim \"exp\" is not a number")
        #expect(
            decision.responseBody() == #"{"error":"invalid_claim","message":"JWT claim \"exp\" is not a number"}"#)
        #expect(decision.responseBody(errorFormat: .portcullis) == decision.responseBody())
    }

    static let postgRESTCodes: [(error: String, code: String)] = [
        ("token_required", "PGRST302"),
        ("invalid_request", "PGRST301"),
        ("insufficient_role", "42501"),
        ("insufficient_scope", "42501"),
        ("malformed", "PGRST301"),
        ("algorithm_not_allowed", "PGRST301"),
        ("unsupported_critical_header", "PGRST301"),
        ("unknown_kid", "PGRST301"),
        ("no_matching_key", "PGRST301"),
        ("bad_signature", "PGRST301"),
        ("missing_exp", "PGRST303"),
        ("expired", "PGRST303"),
        ("not_yet_valid", "PGRST303"),
        ("issued_in_future", "PGRST303"),
        ("invalid_claim", "PGRST303"),
        ("issuer_mismatch", "PGRST303"),
        ("audience_mismatch", "PGRST303"),
        ("unknown_provider", "PGRST301"),
        ("ambiguous_provider", "PGRST301"),
        ("keys_unavailable", "PGRST300"),
    ]

    @Test("every reason has a PostgREST code")
    func everyReasonHasACode() {
        let listed = Set(Self.postgRESTCodes.map(\.error))
        for reason in TokenRefusal.Reason.allCases {
            #expect(listed.contains(reason.rawValue), "\(reason)")
        }
    }

    @Test("PostgREST's body shape and codes", arguments: postgRESTCodes)
    func postgRESTBody(error: String, code: String) {
        let decision = AuthDecision.deny(status: 401, wwwAuthenticate: nil, error: error, message: "Some \"message\"")
        #expect(
            decision.responseBody(errorFormat: .postgrest)
                == #"{"code":"\#(code)","details":null,"hint":null,"message":"Some \"message\""}"#)
    }

    @Test("end to end: the decisions' bodies in PostgREST's shape")
    func postgRESTEndToEnd() async throws {
        let (noToken, _) = await decide(try AccessRule(path: "/x"), .none)
        #expect(
            noToken.responseBody(errorFormat: .postgrest)
                == #"{"code":"PGRST302","details":null,"hint":null,"message":"Anonymous access is disabled"}"#)
        let (expired, _) = await decide(try AccessRule(path: "/x"), Self.extracted, .failure(Self.expired))
        #expect(
            expired.responseBody(errorFormat: .postgrest)
                == #"{"code":"PGRST303","details":null,"hint":null,"message":"JWT expired"}"#)
        let (forged, _) = await decide(
            try AccessRule(path: "/x"), Self.extracted,
            .failure(TokenRefusal(.badSignature, "JWT signature is invalid")))
        #expect(
            forged.responseBody(errorFormat: .postgrest)
                == #"{"code":"PGRST301","details":null,"hint":null,"message":"JWT signature is invalid"}"#)
        #expect(forged.responseBody() == #"{"error":"bad_signature","message":"JWT signature is invalid"}"#)
    }

    @Test("every status path", arguments: [200, 400, 401, 403, 503])
    func statusPaths(status: Int) async throws {
        let rule = try AccessRule(path: "/x", roles: ["webuser"])
        let decision: AuthDecision
        switch status {
        case 200: decision = await decide(rule, Self.extracted).decision
        case 400: decision = await decide(rule, .invalidRequest("More than one Authorization header")).decision
        case 401: decision = await decide(rule, .none).decision
        case 403: decision = await decide(rule, Self.extracted, .success(Self.verified(role: "other"))).decision
        default:
            decision = await decide(
                rule, Self.extracted, .failure(TokenRefusal(.keysUnavailable, "The provider's keys are not available"))
            ).decision
        }
        #expect((denial(decision)?.status ?? 200) == status)
    }
}
