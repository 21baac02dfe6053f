import Foundation
import PortcullisCore
import PortcullisTestSupport
import Testing

/// The proxy over real sockets: a raw client, the proxy in this process, the echo upstream behind it, the
/// JWKS server as identity provider. One proxy for the whole suite; tests that need another configuration
/// start their own.
@Suite("Proxy end to end", .serialized)
struct ProxyEndToEndTests {
    // MARK: Decisions and status codes

    @Test("a valid token is relayed with its role, audience and claims as headers")
    func validTokenRelayed() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token(role: "webuser", ["realm_access": ["roles": ["reader", "editor"]]])
        let response = try await harness.request("/items?select=id&x=%20", headers: [harness.bearer(token)])
        #expect(response.status == 200)
        let echoed = try #require(response.echoedRequest)
        #expect(echoed.target == "/items?select=id&x=%20")
        #expect(echoed.headers(named: "X-Postgres-Role") == ["webuser"])
        #expect(echoed.headers(named: "X-Jwt-Audience") == ["api"])
        #expect(echoed.headers(named: "X-User-Id") == ["user-1"])
        #expect(echoed.headers(named: "X-User-Roles") == ["reader,editor"])
        let payload = try #require(echoed.header("X-Jwt-Claims"))
        #expect(payload.contains(#""sub":"user-1""#))
        #expect(echoed.headers(named: "Authorization") == ["Bearer \(token)"])
        #expect(echoed.header("X-Forwarded-Proto") == "http")
        #expect(echoed.header("X-Forwarded-For") == "127.0.0.1")
        await harness.stop()
    }

    @Test("no token on a required route: 401 with a bare Bearer challenge (RFC 6750 §3.1)")
    func missingToken() async throws {
        let harness = try await ProxyHarness.start()
        let response = try await harness.request("/items")
        #expect(response.status == 401)
        #expect(response.headers(named: "WWW-Authenticate") == ["Bearer"])
        #expect(response.json?["error"] == "token_required")
        #expect(try await harness.upstream.stats().requests == 0)
        await harness.stop()
    }

    @Test("an invalid token is 401 invalid_token, on optional routes too: never downgraded to anonymous")
    func invalidToken() async throws {
        let harness = try await ProxyHarness.start()
        let expired = try harness.token(["exp": Int(Date().timeIntervalSince1970) - 3600])
        for target in ["/items", "/public/page"] {
            let response = try await harness.request(target, headers: [harness.bearer(expired)])
            #expect(response.status == 401)
            let challenge = try #require(response.header("WWW-Authenticate"))
            #expect(challenge.hasPrefix(#"Bearer error="invalid_token", error_description=""#))
            #expect(response.json?["error"] == "expired")
        }
        let forged = try harness.jwks.mint(["iss": ProxyHarness.issuer, "aud": "api"], unpublished: true)
        let response = try await harness.request("/items", headers: [harness.bearer(forged)])
        #expect(response.status == 401)
        #expect(try await harness.upstream.stats().requests == 0)
        await harness.stop()
    }

    @Test("a role or a scope that is not met is 403 insufficient_scope")
    func insufficientRoleOrScope() async throws {
        let harness = try await ProxyHarness.start()
        let user = try harness.token(role: "webuser", ["scope": "read:other"])
        let admin = try harness.token(role: "admin")
        let reader = try harness.token(role: "webuser", ["scp": ["read:items"]])

        let denied = try await harness.request("/admin/users", headers: [harness.bearer(user)])
        #expect(denied.status == 403)
        #expect(denied.header("WWW-Authenticate")?.hasPrefix(#"Bearer error="insufficient_scope""#) == true)
        #expect(denied.json?["error"] == "insufficient_role")
        #expect(try await harness.request("/admin/users", headers: [harness.bearer(admin)]).status == 200)

        let unscoped = try await harness.request("/scoped/items", headers: [harness.bearer(user)])
        #expect(unscoped.status == 403)
        #expect(unscoped.header("WWW-Authenticate")?.contains(#"scope="read:items""#) == true)
        #expect(try await harness.request("/scoped/items", headers: [harness.bearer(reader)]).status == 200)
        await harness.stop()
    }

    @Test("optional routes: no token is anonymous_role; a token without a role claim is anonymous_role too")
    func anonymousRole() async throws {
        let harness = try await ProxyHarness.start()
        let anonymous = try #require(try await harness.request("/public/page").echoedRequest)
        #expect(anonymous.headers(named: "X-Postgres-Role") == ["anon"])
        #expect(anonymous.header("X-User-Id") == nil)
        let roleless = try harness.token(role: nil)
        let echoed = try #require(
            try await harness.request("/public/page", headers: [harness.bearer(roleless)]).echoedRequest)
        #expect(echoed.headers(named: "X-Postgres-Role") == ["anon"])
        #expect(echoed.headers(named: "X-User-Id") == ["user-1"])
        await harness.stop()
    }

    @Test("two different tokens, or two Authorization headers: 400 invalid_request")
    func ambiguousCredentials() async throws {
        let harness = try await ProxyHarness.start()
        let first = try harness.token(sub: "a")
        let second = try harness.token(sub: "b")
        let twoHeaders = try await harness.request("/items", headers: [harness.bearer(first), harness.bearer(first)])
        #expect(twoHeaders.status == 400)
        #expect(twoHeaders.header("WWW-Authenticate")?.hasPrefix(#"Bearer error="invalid_request""#) == true)
        let headerAndQuery = try await harness.request(
            "/items?access_token=\(second)", headers: [harness.bearer(first)])
        #expect(headerAndQuery.status == 400)
        await harness.stop()
    }

    @Test("token sources: the bearer scheme in any case, a cookie, a query parameter")
    func tokenSources() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token()
        #expect(try await harness.request("/items", headers: [("authorization", "bEaReR \(token)")]).status == 200)
        #expect(try await harness.request("/items", headers: [("Cookie", "a=b; access_token=\(token)")]).status == 200)
        let viaQuery = try await harness.request("/items?access_token=\(token)&q=1")
        #expect(viaQuery.status == 200)
        // The query passes unchanged, token included: the upstream sees the request as sent.
        #expect(viaQuery.echoedRequest?.target == "/items?access_token=\(token)&q=1")
        await harness.stop()
    }

    @Test("the upstream's own 401 and 403 pass through untouched")
    func upstreamStatusPassesThrough() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token()
        let response = try await harness.request("/status/401", headers: [harness.bearer(token)])
        #expect(response.status == 401)
        #expect(response.headers(named: "WWW-Authenticate") == [#"Basic realm="upstream""#])
        #expect(try await harness.request("/status/403", headers: [harness.bearer(token)]).status == 403)
        await harness.stop()
    }

    // MARK: Headers the proxy owns

    @Test("spoofed identity headers are removed in any letter case, on every route, whatever the decision")
    func spoofedHeadersRemoved() async throws {
        let harness = try await ProxyHarness.start()
        let spoofed: [(name: String, value: String)] = [
            ("X-Postgres-Role", "admin"), ("x-postgres-role", "admin"), ("X-POSTGRES-ROLE", "admin"),
            ("x-JWT-audience", "other"), ("X-User-Id", "root"), ("x-user-roles", "admin"),
            ("X-Jwt-Claims", #"{"role":"admin"}"#), ("X-Forwarded-Host", "evil"), ("x-forwarded-proto", "https"),
            ("forwarded", "host=evil;proto=https"),
        ]
        let token = try harness.token(role: "webuser")
        for (target, headers) in [
            ("/items", [harness.bearer(token)]), ("/public/x", []), ("/health", []),
        ] {
            let response = try await harness.request(target, headers: spoofed + headers)
            let echoed = try #require(response.echoedRequest, "\(target)")
            let roles = echoed.headers(named: "x-postgres-role")
            #expect(roles == [target == "/items" ? "webuser" : "anon"], "\(target)")
            #expect(!echoed.headers.contains { $0.value == "admin" || $0.value == "root" || $0.value == "evil" })
            #expect(echoed.headers(named: "x-forwarded-proto") == ["http"])
            #expect(echoed.headers(named: "forwarded").isEmpty)
        }
        // A refused request never reaches the upstream at all.
        let before = try await harness.upstream.stats().requests
        #expect(try await harness.request("/admin/x", headers: spoofed).status == 401)
        #expect(try await harness.upstream.stats().requests == before)
        await harness.stop()
    }

    @Test("identity headers smuggled in a chunked body's trailers never reach the upstream (CVE-2013-5704's shape)")
    func spoofedTrailersRemoved() async throws {
        // An upstream that merges request trailers into the headers (Apache's MergeTrailers) would otherwise take
        // a role, a token or an address the client wrote after the body, once the head had been rewritten. All
        // trailers are dropped, an innocent one too: no list of dangerous names can be complete.
        let harness = try await ProxyHarness.start()
        let token = try harness.token(role: "webuser")
        let connection = try await RawHTTPConnection.connect(port: harness.port)
        defer { connection.close() }
        for target in ["/items", "/public/x"] {
            let auth = target == "/items" ? "Authorization: Bearer \(token)\r\n" : ""
            try await connection.send(
                "POST \(target) HTTP/1.1\r\nHost: a\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                    + "X-Postgres-Role: admin\r\nx-POSTGRES-role: admin\r\nX-User-Id: root\r\n"
                    + "X-Jwt-Claims: {}\r\nX-Forwarded-Host: evil\r\nX-Forwarded-For: 10.0.0.1\r\n"
                    + "X-Request-Id: forged\r\nAuthorization: Bearer forged\r\nCookie: access_token=forged\r\n"
                    + "X-Checksum: 1234\r\n\r\n")
            let response = try await connection.readResponse(requestMethod: "POST")
            let echoed = try #require(response.echoedRequest, "\(target)")
            #expect(echoed.bodyLength == 5)
            #expect(echoed.trailers.map(\.name) == [], "\(target)")
            #expect(echoed.headers(named: "x-postgres-role") == [target == "/items" ? "webuser" : "anon"])
        }
        await harness.stop()
    }

    @Test("hop-by-hop headers are removed both ways (RFC 9110 §7.6.1); X-Forwarded-For is appended to")
    func hopByHop() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token()
        let response = try await harness.request(
            "/items",
            headers: [
                harness.bearer(token), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"),
                ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"),
                ("Trailer", "X-T"), ("Proxy-Authorization", "Basic eDp5"), ("Upgrade", "h2c"),
                ("X-Forwarded-For", "203.0.113.7"), ("X-Kept", "yes"),
            ])
        let echoed = try #require(response.echoedRequest)
        for name in [
            "X-Secret", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Proxy-Authorization", "Upgrade",
        ] {
            #expect(echoed.header(name) == nil, "\(name)")
        }
        #expect(echoed.header("X-Kept") == "yes")
        #expect(echoed.header("X-Forwarded-For") == "203.0.113.7, 127.0.0.1")

        let hop = try await harness.request("/hop", headers: [harness.bearer(token)])
        #expect(hop.status == 200)
        #expect(hop.header("X-Upstream-Hop") == nil)
        #expect(hop.header("Keep-Alive") == nil)
        #expect(hop.header("X-Kept") == "yes")
        await harness.stop()
    }

    @Test("with authorization: strip, the upstream never sees the token")
    func authorizationStripped() async throws {
        let harness = try await ProxyHarness.start { object in
            var forward = object["forward"] as! [String: Any]
            forward["authorization"] = "strip"
            object["forward"] = forward
        }
        let token = try harness.token()
        let echoed = try #require(
            try await harness.request("/items", headers: [("AUTHORIZATION", "Bearer \(token)")]).echoedRequest)
        #expect(echoed.header("Authorization") == nil)
        #expect(echoed.header("X-Postgres-Role") == "webuser")
        await harness.stop()
    }

    // MARK: Paths

    @Test("a path is judged as the upstream will resolve it: dot-segments, encoded dots, repeated slashes")
    func pathNormalization() async throws {
        let harness = try await ProxyHarness.start()
        for target in ["/public/../admin/x", "/public/%2e%2e/admin/x", "/public/%2E%2E/admin/x", "//admin//x"] {
            let response = try await harness.request(target)
            #expect(response.status == 401, "\(target) must be judged as /admin/x")
        }
        let token = try harness.token(role: "admin")
        let echoed = try #require(
            try await harness.request("/public/%2e%2e/admin/x?y=%2e", headers: [harness.bearer(token)]).echoedRequest)
        #expect(echoed.target == "/admin/x?y=%2e")
        for target in ["/public/..%2Fadmin/x", "/public/..;/admin", "/../x", "/a\\..\\b"] {
            let response = try await harness.request(target)
            #expect(response.status == 400, "\(target)")
        }
        await harness.stop()
    }

    @Test("an absolute-form target never chooses the upstream")
    func absoluteForm() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token()
        let response = try await harness.request(
            "http://evil.example:9999/items?q=1", headers: [harness.bearer(token), ("Host", "api.test")])
        let echoed = try #require(response.echoedRequest)
        #expect(echoed.target == "/items?q=1")
        #expect(echoed.header("Host") == "api.test")
        await harness.stop()
    }
}
