import Foundation
import Logging
import PortcullisCore
import PortcullisTestSupport
import Testing

/// What an operator sees: the admin listener, the metrics moving, the access log, request ids.
@Suite("Admin endpoints, metrics, access log", .serialized)
struct OperationsTests {
    func admin(_ harness: ProxyHarness, _ path: String) async throws -> RawHTTPResponse {
        try await RawHTTPConnection.request(port: harness.adminPort, target: path)
    }

    /// The value of one sample line (`name{labels} value`) in a Prometheus exposition, 0 when absent.
    func sample(_ exposition: String, _ series: String) -> Double {
        for line in exposition.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1)) ?? 0
        }
        return 0
    }

    @Test("healthz is alive; readyz names each provider; the admin port is not the proxy's")
    func healthAndReadiness() async throws {
        let harness = try await ProxyHarness.start()
        #expect(harness.adminPort != harness.port)
        let health = try await admin(harness, "/healthz")
        #expect(health.status == 200)
        let ready = try await admin(harness, "/readyz")
        #expect(ready.status == 200)
        #expect(ready.json?["providers"]?.arrayValue?.first?["provider"] == "idp")
        #expect(try await admin(harness, "/nothing").status == 404)
        // The proxy port does not answer admin paths: there, /healthz is just another path needing a token.
        #expect(try await harness.request("/healthz").status == 401)
        await harness.stop()
    }

    @Test("readyz is 503 with the reason while the provider has no keys, and flips to 200 once it has them")
    func readinessFlipsWithTheJWKS() async throws {
        let jwks = try await offPool { try JWKSTestServer.start() }
        try jwks.setMode(.error)
        let upstream = try await EchoUpstream.start()
        let harness = try await ProxyHarness.start(
            jwks: jwks, upstream: upstream, upstreamURL: upstream.baseURL, waitForReady: false)
        let notReady = try await admin(harness, "/readyz")
        #expect(notReady.status == 503)
        let provider = try #require(notReady.json?["providers"]?.arrayValue?.first)
        #expect(provider["ready"] == false)
        #expect(provider["reason"]?.stringValue?.isEmpty == false)
        // Requests meanwhile get 503 keys_unavailable, not 401: the token is not at fault.
        let token = try harness.token()
        #expect(try await harness.request("/items", headers: [harness.bearer(token)]).status == 503)

        // The endpoint recovers. A token naming a key the proxy does not hold triggers a refetch at once
        // (rate-limited), rather than waiting out the failure backoff.
        try jwks.setMode(.ok)
        let deadline = ContinuousClock.now + .seconds(30)
        var status = 0
        while status != 200 && ContinuousClock.now < deadline {
            status = try await harness.request("/items", headers: [harness.bearer(token)]).status
            if status != 200 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(status == 200)
        #expect(try await admin(harness, "/readyz").status == 200)
        await harness.stop()
    }

    @Test("metrics move as requests flow: decisions by reason, cache hits, upstream errors, JWKS, connections")
    func metricsMove() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token()
        let before = try await admin(harness, "/metrics").bodyText
        #expect(before.contains("portcullis_jwks_fetches_total{provider=\"idp\",result=\"success\"}"))
        #expect(sample(before, #"portcullis_jwks_keys{provider="idp"}"#) == 1)

        for _ in 0..<3 { _ = try await harness.request("/items", headers: [harness.bearer(token)]) }
        _ = try await harness.request("/items")
        _ = try await harness.request("/admin/x", headers: [harness.bearer(token)])
        _ = try await harness.request("/public/x")
        _ = try await harness.request("/slow/10", headers: [harness.bearer(token)])
        let after = try await admin(harness, "/metrics").bodyText
        #expect(sample(after, #"portcullis_requests_total{decision="allowed",reason="ok"}"#) == 4)
        #expect(sample(after, #"portcullis_requests_total{decision="allowed",reason="anonymous"}"#) == 1)
        #expect(sample(after, #"portcullis_requests_total{decision="unauthorized",reason="token_required"}"#) == 1)
        #expect(sample(after, #"portcullis_requests_total{decision="forbidden",reason="insufficient_role"}"#) == 1)
        #expect(sample(after, "portcullis_token_cache_hits_total") >= 3)
        #expect(sample(after, "portcullis_token_cache_misses_total") >= 1)
        #expect(sample(after, "portcullis_token_cache_entries") >= 1)
        #expect(sample(after, #"portcullis_upstream_errors_total{status="504"}"#) == 1)
        #expect(after.contains("portcullis_verification_duration_seconds_bucket"))
        // Verifications are timed, cache hits are not.
        #expect(
            sample(after, "portcullis_verification_duration_seconds_count")
                == sample(after, "portcullis_token_cache_misses_total"))
        #expect(after.contains("portcullis_upstream_duration_seconds_count"))
        #expect(after.contains("portcullis_open_connections"))
        // The figures read from state say what they are, as Prometheus's exposition format allows.
        for name in [
            "portcullis_open_connections", "portcullis_token_cache_entries", "portcullis_jwks_keys",
            "portcullis_jwks_age_seconds", "portcullis_jwks_fetches_total",
        ] {
            #expect(after.contains("# HELP \(name) "), "no HELP line for \(name)")
        }
        await harness.stop()
    }

    @Test("one access line per request with its fields; the client's X-Request-Id is kept and forwarded")
    func accessLog() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token(sub: "user-7")
        let allowed = try await harness.request(
            "/items?secret=1", headers: [harness.bearer(token), ("X-Request-Id", "req-abc-123")])
        #expect(allowed.echoedRequest?.header("X-Request-Id") == "req-abc-123")
        let refused = try await harness.request("/items")
        let generated = try #require(refused.header("X-Request-Id"))
        #expect(generated.utf8.count == 15)

        let lines = harness.logs.records.filter { $0.message == "request" }
        let first = try #require(lines.first { $0.metadata["request_id"] == "req-abc-123" })
        #expect(first.metadata["method"] == "GET")
        #expect(first.metadata["path"] == "/items")
        #expect(first.metadata["status"] == "200")
        #expect(first.metadata["decision"] == "allowed")
        #expect(first.metadata["reason"] == "ok")
        #expect(first.metadata["provider"] == "idp")
        #expect(first.metadata["sub"] == "user-7")
        #expect(first.metadata["kid"] == "k1")
        #expect(first.metadata["duration_ms"] != nil)
        #expect(first.metadata["upstream_ms"] != nil)
        let second = try #require(lines.first { $0.metadata["request_id"] == .string(generated) })
        #expect(second.metadata["status"] == "401")
        #expect(second.metadata["decision"] == "unauthorized")
        #expect(second.metadata["reason"] == "token_required")
        await harness.stop()
    }

    @Test("a client gone mid-upload is logged as client_closed, not as a 400 it never received")
    func clientGoneMidUpload() async throws {
        let harness = try await ProxyHarness.start()
        let token = try harness.token()
        let connection = try await RawHTTPConnection.connect(port: harness.port)
        try await connection.sendRequest(
            method: "POST", target: "/items",
            headers: [harness.bearer(token), ("Content-Length", "100000"), ("X-Request-Id", "cut-upload")])
        try await connection.send([UInt8](repeating: 0x61, count: 1_000))
        connection.close()
        var line: CapturedLogs.Record?
        let deadline = ContinuousClock.now + .seconds(10)
        while line == nil && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            line = harness.logs.records.first { $0.message == "request" && $0.metadata["request_id"] == "cut-upload" }
        }
        let record = try #require(line)
        #expect(record.metadata["decision"] == "allowed")
        #expect(record.metadata["reason"] == "client_closed")
        let metrics = try await admin(harness, "/metrics").bodyText
        #expect(!metrics.contains(#"reason="bad_request""#))
        await harness.stop()
    }

    @Test("tokens never reach the logs, at any level, whatever happens to them")
    func noTokensInLogs() async throws {
        let harness = try await ProxyHarness.start()
        let good = try harness.token()
        let expired = try harness.token(["exp": 1])
        let forged = String(good.dropLast(4)) + "AAAA"
        for token in [good, expired, forged, good + "." + good] {
            _ = try await harness.request("/items", headers: [harness.bearer(token)])
            _ = try await harness.request("/items?access_token=\(token)")
            _ = try await harness.request("/items", headers: [("Cookie", "access_token=\(token)")])
        }
        #expect(harness.logs.records.contains { $0.message == "request" })
        // `stop` checks every log line against every token minted here.
        await harness.stop()
    }

    @Test("a reload that changes the audience: new requests are judged by it, a request in flight finishes")
    func reloadWithRequestInFlight() async throws {
        let harness = try await ProxyHarness.start()
        let oldAudience = try harness.token()
        let newAudience = try harness.jwks.mint(["iss": ProxyHarness.issuer, "aud": "api-v2", "role": "webuser"])
        let fetchesBefore = try harness.jwks.jwksRequestCount()

        // A slow request, admitted under the old audience, still running during the reload.
        let slow = Task { try await harness.request("/slow/1.5", headers: [harness.bearer(oldAudience)]) }
        try await Task.sleep(for: .milliseconds(300))
        let configuration = try ProxyHarness.configuration(
            upstreamURL: harness.upstream.baseURL, jwksURL: harness.jwks.baseURL + "/jwks.json"
        ) { object in
            var providers = object["providers"] as! [[String: Any]]
            providers[0]["audiences"] = ["api-v2"]
            object["providers"] = providers
        }
        try harness.proxy.reload(configuration, logger: harness.logs.logger)

        #expect(try await slow.value.status == 200)
        let refused = try await harness.request("/items", headers: [harness.bearer(oldAudience)])
        #expect(refused.status == 401)
        #expect(refused.json?["error"] == "audience_mismatch")
        #expect(try await harness.request("/items", headers: [harness.bearer(newAudience)]).status == 200)
        // The provider changed (its audience), so its keys were fetched anew.
        #expect(try harness.jwks.jwksRequestCount() > fetchesBefore)

        // A reload that leaves the provider alone keeps its keys: no fetch.
        let fetchesAfter = try harness.jwks.jwksRequestCount()
        let rulesOnly = try ProxyHarness.configuration(
            upstreamURL: harness.upstream.baseURL, jwksURL: harness.jwks.baseURL + "/jwks.json"
        ) { object in
            var providers = object["providers"] as! [[String: Any]]
            providers[0]["audiences"] = ["api-v2"]
            object["providers"] = providers
            object["rules"] = [["path": "/*", "auth": "optional"]]
        }
        try harness.proxy.reload(rulesOnly, logger: harness.logs.logger)
        #expect(try await harness.request("/items").echoedRequest?.header("X-Postgres-Role") == "anon")
        #expect(try harness.jwks.jwksRequestCount() == fetchesAfter)
        #expect(try await harness.request("/items", headers: [harness.bearer(newAudience)]).status == 200)
        await harness.stop()
    }

    @Test("a reload that would move the listener is refused and the running configuration stays")
    func reloadOfListenRefused() async throws {
        let harness = try await ProxyHarness.start()
        var moved = try ProxyHarness.configuration(
            upstreamURL: harness.upstream.baseURL, jwksURL: harness.jwks.baseURL + "/jwks.json")
        moved.listen = ("127.0.0.1", 1)
        #expect(throws: (any Error).self) { try harness.proxy.reload(moved, logger: harness.logs.logger) }
        #expect(try await harness.request("/items").status == 401)
        await harness.stop()
    }
}
