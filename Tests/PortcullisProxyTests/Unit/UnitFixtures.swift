import NIOHTTP1
import PortcullisConfig
import PortcullisCore
import PortcullisProxy

/// Shared inputs for the unit tests of the gate, the upstream head, the forwarded identity and the token cache:
/// a small configuration read from JSON (nothing is fetched), request heads, and verified tokens.
enum UnitFixtures {
    /// The configuration the unit tests share, with `limits` as its `limits` object.
    static func configurationJSON(limits: String) -> String {
        """
        {
          "upstream": "http://127.0.0.1:3000",
          "token_sources": [{"header": "Authorization", "scheme": "Bearer"}, {"query": "access_token"}],
          "providers": [
            {"name": "idp", "jwks_url": "http://127.0.0.1:1/jwks.json", "issuer": "https://idp.test/",
             "audiences": ["api"], "algorithms": ["ES256"]}
          ],
          "anonymous_role": "anon",
          "forward": {
            "role_header": "X-Postgres-Role", "audience_header": "X-Jwt-Audience",
            "claims": {"X-User-Id": "$.sub", "X-User-Roles": {"path": "$.realm_access.roles", "join": ","}},
            "claims_header": "X-Jwt-Claims"
          },
          "rules": [
            {"path": "/health", "auth": "none"},
            {"path": "/public/*", "auth": "optional"},
            {"path": "/admin/*", "auth": "required", "roles": ["admin"]},
            {"path": "/*", "auth": "required"}
          ],
          "limits": \(limits)
        }
        """
    }

    static func configuration(limits: String = #"{"max_body_bytes": 100}"#) throws -> PortcullisConfiguration {
        try PortcullisConfiguration.decode(Array(configurationJSON(limits: limits).utf8), environment: [:]).get()
    }

    static func gate(limits: String = #"{"max_body_bytes": 100}"#) throws -> RequestGate {
        RequestGate(configuration: try configuration(limits: limits))
    }

    static func forwarding() throws -> PortcullisConfiguration.Forwarding {
        try configuration().forward
    }

    static func request(
        _ method: HTTPMethod = .GET, _ uri: String, _ headers: [(String, String)] = [("Host", "api.test")],
        version: HTTPVersion = .http1_1
    ) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    static func token(
        _ claims: [String: JSONValue] = [:], role: JSONValue? = nil, audience: String? = "api", keyID: String? = "k1"
    ) -> VerifiedToken {
        VerifiedToken(
            provider: "idp", algorithm: .es256, keyID: keyID, claims: claims, audience: audience, role: role)
    }
}

extension RequestGate.Verdict {
    /// The immediate answer, or nil when the request was admitted.
    var response: ProxyResponse? {
        if case .respond(let response) = self { return response }
        return nil
    }

    /// The admission, or nil when the gate answered at once.
    var admission: RequestGate.Admission? {
        if case .admit(let admission) = self { return admission }
        return nil
    }
}

extension ProxyResponse {
    /// The `error` code of the JSON body.
    var errorCode: String? {
        guard case .object(let members)? = try? JSONParser(maxDepth: 4).parse(Array(body.utf8)) else { return nil }
        return members["error"]?.stringValue
    }
}

extension HTTPHeaders {
    /// Every value of `name`, in any letter case, in order.
    func values(_ name: String) -> [String] { self[name] }

    /// The header names in order, as they will be written.
    var names: [String] { map(\.name) }
}
