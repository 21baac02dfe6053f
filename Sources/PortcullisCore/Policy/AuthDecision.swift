/// What the proxy does with a request once its rule, its token (if any) and the token's verification are known.
///
/// | situation | status | `WWW-Authenticate` | `error` |
/// |---|---|---|---|
/// | `auth: none` | allow, no identity | | |
/// | no token, `optional` | allow, no identity | | |
/// | no token, `required` | 401 | `Bearer` (RFC 6750 §3.1: no error code) | `token_required` |
/// | ambiguous or malformed credentials | 400 | `Bearer error="invalid_request", …` | `invalid_request` |
/// | token refused | 401 | `Bearer error="invalid_token", error_description="…"` | the refusal's reason |
/// | provider's keys unavailable | 503 | none: the token is not at fault | `keys_unavailable` |
/// | role not admitted | 403 | `Bearer error="insufficient_scope", …` | `insufficient_role` |
/// | a scope missing | 403 | `Bearer error="insufficient_scope", …, scope="…"` | `insufficient_scope` |
/// | otherwise | allow, with the verified token | | |
///
/// An invalid token is refused on `optional` routes too: a client that sent a token meant to be someone, and
/// treating it as anonymous would hide an expired session behind a page that looks logged-out.
///
/// `keys_unavailable` is 503 rather than 401 because nothing is wrong with the token: a 401 would send the
/// client to fetch a new one, which fails the same way.
public enum AuthDecision: Sendable {
    /// Relay the request; `identity` is the verified token, nil for an anonymous request or an `auth: none`
    /// route.
    case allow(identity: VerifiedToken?)
    /// Answer with `status`. `error` is a stable code (a `TokenRefusal.Reason` raw value, or one of
    /// `token_required`, `invalid_request`, `insufficient_role`, `insufficient_scope`); `message` is for people
    /// and never holds token text.
    case deny(status: Int, wwwAuthenticate: String?, error: String, message: String)

    /// The shape of a denial's JSON body.
    public enum ErrorFormat: String, Sendable, Hashable, CaseIterable {
        /// `{"error":"<code>","message":"…"}`.
        case portcullis
        /// PostgREST's error object, `{"code":"PGRST301","details":null,"hint":null,"message":"…"}`, so clients
        /// written for PostgREST (postgrest-js, supabase-js) read the proxy's answers as their own.
        case postgrest
    }

    /// The first step: everything that can be decided without verifying a token.
    ///
    /// `auth: none` allows without looking at the extraction at all; otherwise an invalid request or a missing
    /// token decides, and a token has to be verified first (`.verify`), then passed to
    /// `decide(rule:verification:)`. Verification is the caller's because it may wait on a key refetch.
    public static func evaluate(rule: AccessRule, extraction: TokenExtraction) -> AuthEvaluation {
        if rule.auth == .none { return .decided(.allow(identity: nil)) }
        switch extraction {
        case .none:
            guard rule.auth == .required else { return .decided(.allow(identity: nil)) }
            return .decided(
                .deny(
                    status: 401, wwwAuthenticate: "Bearer", error: Code.tokenRequired,
                    message: "Anonymous access is disabled"))
        case .invalidRequest(let reason):
            return .decided(
                .deny(
                    status: 400, wwwAuthenticate: challenge(error: "invalid_request", description: reason),
                    error: Code.invalidRequest, message: reason))
        case .token(let token, _):
            return .verify(token)
        }
    }

    /// The second step: the decision once the token from `evaluate` has been verified. On an `auth: none`
    /// route the outcome is ignored and the request allowed without identity.
    public static func decide(rule: AccessRule, verification: Result<VerifiedToken, TokenRefusal>) -> AuthDecision {
        if rule.auth == .none { return .allow(identity: nil) }
        let token: VerifiedToken
        switch verification {
        case .failure(let refusal) where refusal.reason == .keysUnavailable:
            return .deny(status: 503, wwwAuthenticate: nil, error: refusal.reason.rawValue, message: refusal.message)
        case .failure(let refusal):
            return .deny(
                status: 401, wwwAuthenticate: challenge(error: "invalid_token", description: refusal.message),
                error: refusal.reason.rawValue, message: refusal.message)
        case .success(let verified):
            token = verified
        }
        if !rule.admits(role: token.role) {
            let message = "The token's role is not allowed here"
            return .deny(
                status: 403, wwwAuthenticate: challenge(error: "insufficient_scope", description: message),
                error: Code.insufficientRole, message: message)
        }
        if !rule.missingScopes(in: token.claims).isEmpty {
            let message = "The token lacks a required scope"
            // RFC 6750 §3: the scope attribute tells the client what to ask for.
            let scope = (rule.scopes ?? []).joined(separator: " ")
            return .deny(
                status: 403,
                wwwAuthenticate: challenge(error: "insufficient_scope", description: message, scope: scope),
                error: Code.insufficientScope, message: message)
        }
        return .allow(identity: token)
    }

    /// Both steps, for a caller that can verify inline: `verify` is called at most once, and only when a token
    /// has to be judged (never on `auth: none` routes).
    public static func decide(
        rule: AccessRule, extraction: TokenExtraction,
        verify: (Substring) async -> Result<VerifiedToken, TokenRefusal>
    ) async -> AuthDecision {
        switch evaluate(rule: rule, extraction: extraction) {
        case .decided(let decision): decision
        case .verify(let token): decide(rule: rule, verification: await verify(token))
        }
    }

    /// The JSON body for a denial, nil for `allow`. Written with `JSONValue.compactJSON`, so it is plain ASCII
    /// with members in name order.
    ///
    /// PostgREST codes (its `Error.hs`, group 3): `PGRST302` for a missing token ("Anonymous access is
    /// disabled"); `PGRST303` for refusals of the claims (`exp`, `nbf`, `iat`, `iss`, `aud`, claim types), which
    /// PostgREST calls claims-validation errors; `PGRST301` for every other refusal of the token, and for an
    /// invalid request, which PostgREST also reports as a JWT error; `PGRST300` ("server lacks JWT secret")
    /// when the keys are unavailable. Role and scope denials get `42501`, the Postgres insufficient_privilege
    /// code that PostgREST answers with 403 for an authenticated role.
    public func responseBody(errorFormat: ErrorFormat = .portcullis) -> String? {
        guard case .deny(_, _, let error, let message) = self else { return nil }
        switch errorFormat {
        case .portcullis:
            return JSONValue.object(["error": .string(error), "message": .string(message)]).compactJSON
        case .postgrest:
            return JSONValue.object([
                "code": .string(Self.postgRESTCode(error: error)),
                "details": .null,
                "hint": .null,
                "message": .string(message),
            ]).compactJSON
        }
    }

    /// The `error` codes that are not `TokenRefusal` reasons.
    private enum Code {
        static let tokenRequired = "token_required"
        static let invalidRequest = "invalid_request"
        static let insufficientRole = "insufficient_role"
        static let insufficientScope = "insufficient_scope"
    }

    private static func postgRESTCode(error: String) -> String {
        switch error {
        case Code.tokenRequired:
            return "PGRST302"
        case Code.insufficientRole, Code.insufficientScope:
            return "42501"
        case Code.invalidRequest:
            return "PGRST301"
        default:
            switch TokenRefusal.Reason(rawValue: error) {
            case .missingExpiry, .expired, .notYetValid, .issuedInFuture, .invalidClaim, .issuerMismatch,
                .audienceMismatch:
                return "PGRST303"
            case .keysUnavailable:
                return "PGRST300"
            default:
                return "PGRST301"
            }
        }
    }

    /// A Bearer challenge (RFC 6750 §3) with an error code and a description.
    private static func challenge(error: String, description: String, scope: String? = nil) -> String {
        var challenge = "Bearer error=\"\(error)\", error_description=\(quoted(description))"
        if let scope, !scope.isEmpty { challenge += ", scope=\(quoted(scope))" }
        return challenge
    }

    /// `text` as a quoted-string whose content RFC 6750 §3 allows in `error_description` and `scope`
    /// (%x20-21 / %x23-5B / %x5D-7E): `"` becomes `'`, and a backslash, a control character or anything
    /// outside ASCII becomes `?`. No escaping is needed then, and no value can end the header or the string.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: result += "'"
            case 0x5C: result += "?"
            case 0x20...0x7E: result.unicodeScalars.append(scalar)
            default: result += "?"
            }
        }
        return result + "\""
    }
}

/// The first step of an authorization decision (`AuthDecision.evaluate`).
public enum AuthEvaluation: Sendable {
    /// Decided without verifying anything.
    case decided(AuthDecision)
    /// Verify this token, then call `AuthDecision.decide(rule:verification:)`.
    case verify(Substring)
}
