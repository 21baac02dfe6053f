import Foundation
import PortcullisCore
import PortcullisTestSupport
import Testing

/// Forward-auth mode: Portcullis as the decision endpoint of a real nginx from Debian (`auth_request`).
@Suite("Forward-auth mode", .serialized)
struct ForwardAuthTests {
    static func forwardAuth(_ object: inout [String: Any]) {
        object["mode"] = "forward_auth"
        object["rules"] = [
            ["path": "/api/admin/*", "auth": "required", "roles": ["admin"]],
            ["path": "/api/public/*", "auth": "optional"],
            ["path": "/*", "auth": "required"],
        ]
    }

    @Test("the decision alone: 200 with the identity headers, or the refusal, for the described request")
    func decisionEndpoint() async throws {
        let harness = try await ProxyHarness.start(adjust: Self.forwardAuth)
        let token = try harness.token(role: "webuser", sub: "u-1")
        let allowed = try await harness.request(
            "/auth",
            headers: [harness.bearer(token), ("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/api/items?x=1")])
        #expect(allowed.status == 200)
        #expect(allowed.header("X-Postgres-Role") == "webuser")
        #expect(allowed.header("X-User-Id") == "u-1")
        let forbidden = try await harness.request(
            "/auth", headers: [harness.bearer(token), ("X-Original-URI", "/api/admin/users")])
        #expect(forbidden.status == 403)
        let anonymous = try await harness.request("/auth", headers: [("X-Original-URI", "/api/public/menu")])
        #expect(anonymous.status == 200)
        #expect(anonymous.header("X-Postgres-Role") == "anon")
        let traversal = try await harness.request("/auth", headers: [("X-Original-URI", "/api/public/../admin/x")])
        #expect(traversal.status == 401)
        // Envoy's ext_authz asks with the original method and path themselves, and no describing headers.
        #expect(try await harness.request("/api/items", headers: [harness.bearer(token)]).status == 200)
        #expect(try await harness.request("/api/admin/users", headers: [harness.bearer(token)]).status == 403)
        #expect(try await harness.upstream.stats().requests == 0)
        await harness.stop()
    }

    @Test(
        "behind nginx auth_request: allowed requests reach the upstream with the mapped role; refusals are 401/403",
        .enabled(if: NginxUpstream.isAvailable))
    func behindNginx() async throws {
        let harness = try await ProxyHarness.start(adjust: Self.forwardAuth)
        let template = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Tests/Support/nginx_forward_auth.conf.template"),
            encoding: .utf8)
        let nginx = try await NginxUpstream.start(
            template: template,
            substitutions: [
                "@UPSTREAM_PORT@": String(harness.upstream.port), "@PORTCULLIS_PORT@": String(harness.port),
            ])
        defer { nginx.stop() }
        let token = try harness.token(role: "webuser", sub: "u-2")

        let allowed = try await RawHTTPConnection.request(
            port: nginx.port, target: "/api/items?x=1",
            headers: [("Authorization", "Bearer \(token)"), ("X-Postgres-Role", "admin")])
        #expect(allowed.status == 200)
        let echoed = try #require(allowed.echoedRequest)
        #expect(echoed.target == "/api/items?x=1")
        #expect(echoed.headers(named: "X-Postgres-Role") == ["webuser"])
        #expect(echoed.headers(named: "X-User-Id") == ["u-2"])

        let missing = try await RawHTTPConnection.request(port: nginx.port, target: "/api/items")
        #expect(missing.status == 401)
        #expect(missing.header("WWW-Authenticate") == "Bearer")
        let forbidden = try await RawHTTPConnection.request(
            port: nginx.port, target: "/api/admin/users", headers: [("Authorization", "Bearer \(token)")])
        #expect(forbidden.status == 403)
        let anonymous = try await RawHTTPConnection.request(
            port: nginx.port, target: "/api/public/menu", headers: [("X-Postgres-Role", "admin")])
        #expect(anonymous.echoedRequest?.headers(named: "X-Postgres-Role") == ["anon"])
        await harness.stop()
    }
}
