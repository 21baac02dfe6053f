import Foundation
import Logging
import PortcullisCore
import PortcullisKeySource
import PortcullisTestSupport
import Testing

/// Key sources over real sockets: a JWKS server started by the test (Tests/Support/jwks_server.py) and
/// fetched for real through libcurl. Timings are printed for the record; none is asserted tightly.
@Suite("Key sources (libcurl, real JWKS server)", .serialized)
struct KeySourceIntegrationTests {
    static let logger = Logger(label: "portcullis-tests")

    /// A provider for `server`, with short timings so the lifecycle can be watched within a test.
    func provider(
        _ server: JWKSTestServer, name: String = "idp", configure: (inout ProviderConfiguration) -> Void = { _ in }
    ) -> ProviderConfiguration {
        var configuration = ProviderConfiguration(name: name, keySource: .jwksURL(server.baseURL + "/jwks.json"))
        configuration.refresh = RefreshPolicy(
            refreshInterval: 300, minRefreshInterval: 1, maxRefreshInterval: 3600, maxStale: 3600, backoffBase: 0.2,
            backoffMax: 0.5)
        configuration.fetch.timeout = .seconds(2)
        configuration.unknownKidWait = .seconds(1)
        configure(&configuration)
        return configuration
    }

    func mint(_ server: JWKSTestServer, _ claims: [String: Any] = [:], extra: [String: Any] = [:]) throws -> String {
        var command: [String: Any] = ["cmd": "mint", "claims": claims]
        command.merge(extra) { $1 }
        let reply = try server.command(command)
        return try #require(reply["token"] as? String)
    }

    func started(_ configurations: [ProviderConfiguration]) async throws -> TokenAuthenticator {
        let authenticator = TokenAuthenticator(providers: configurations, fetcher: CurlFetcher(), logger: Self.logger)
        authenticator.start()
        try await waitUntil("ready") { authenticator.isReady }
        return authenticator
    }

    /// Waits for something that must happen eventually. Generous on purpose: on 2 shared cores other test
    /// suites may hold the CPU for seconds; this is not a measure of speed.
    func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TestTimeout(what: what) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    struct TestTimeout: Error { let what: String }

    func decide(_ authenticator: TokenAuthenticator, _ token: String) async -> Result<VerifiedToken, TokenRefusal> {
        await authenticator.authenticate(Substring(token), now: Date().timeIntervalSince1970)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let duration = ContinuousClock.now - start
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func elapsed(_ start: ContinuousClock.Instant) -> String {
        String(format: "%.1f ms", seconds(since: start) * 1000)
    }

    @Test("fetches at startup, becomes ready, and verifies; counts the fetch")
    func startup() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let authenticator = try await started([provider(server)])
        defer { authenticator.stop() }
        let verified = try await decide(authenticator, try mint(server, ["role": "web"])).get()
        #expect(verified.keyID == "k1" && verified.provider == "idp")
        #expect(authenticator.sources[0].statistics.fetchSuccesses == 1)
        #expect(authenticator.sources[0].statistics.keyCount == 1)
        #expect(try server.jwksRequestCount() == 1)
    }

    @Test("a plain-http key URL is allowed, with a warning at startup")
    func plainHTTPWarning() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let logs = CapturedLogs()
        let authenticator = TokenAuthenticator(
            providers: [provider(server)], fetcher: CurlFetcher(), logger: logs.logger)
        authenticator.start()
        defer { authenticator.stop() }
        try await waitUntil("ready") { authenticator.isReady }
        #expect(logs.records.contains { $0.level == .warning && $0.message.contains("plain http") })
    }

    @Test("after a rotation, a token signed by the new key succeeds on its first request")
    func rotation() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let authenticator = try await started([provider(server)])
        defer { authenticator.stop() }
        let rotated = try server.command(["cmd": "rotate"])
        #expect(rotated["kid"] as? String == "k2")
        let token = try mint(server)
        let start = ContinuousClock.now
        let verified = try await decide(authenticator, token).get()
        print("rotation: first request with the new kid decided in \(Self.elapsed(start)) (one refetch)")
        #expect(verified.keyID == "k2")
        #expect(try server.jwksRequestCount() == 2)
        // A key that leaves the JWKS stops being accepted after the next successful refresh.
        let oldToken = try mint(server, extra: ["kid": "k1"])
        _ = try server.command(["cmd": "retire", "kid": "k1"])
        _ = try server.command(["cmd": "rotate"])
        _ = try await decide(authenticator, try mint(server)).get()  // refetch for k3 also drops k1
        #expect(authenticator.sources[0].keys.key(withID: "k1") == nil)
        #expect(throws: TokenRefusal.self) { try decideSync(authenticator, oldToken) }
    }

    func decideSync(_ authenticator: TokenAuthenticator, _ token: String) throws(TokenRefusal) {
        // The refetch budget is spent by now; decide with the keys held.
        let keys = authenticator.sources[0].keys
        let verifier = TokenVerifier(policy: VerificationPolicy(provider: "idp"))
        _ = try verifier.verify(Substring(token), with: keys, now: Date().timeIntervalSince1970).get()
    }

    @Test("a flood of 10,000 tokens with unknown kids makes a handful of fetches")
    func flood() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let authenticator = try await started([provider(server)])
        defer { authenticator.stop() }
        let template = try mint(server).split(separator: ".")
        let before = try server.jwksRequestCount()
        let start = ContinuousClock.now
        var refused = 0
        for batch in 0..<50 {
            refused += await withTaskGroup(of: Int.self) { group in
                for index in 0..<200 {
                    let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"random-\#(batch)-\#(index)"}"#.utf8))
                    let token = "\(header).\(template[1]).\(template[2])"
                    group.addTask {
                        if case .failure(let refusal) = await decide(authenticator, token),
                            refusal.reason == .unknownKid
                        {
                            return 1
                        }
                        return 0
                    }
                }
                return await group.reduce(0, +)
            }
        }
        let fetches = try server.jwksRequestCount() - before
        let seconds = Self.seconds(since: start)
        print("flood: 10,000 unknown-kid requests caused \(fetches) JWKS fetches in \(Self.elapsed(start))")
        #expect(refused == 10_000)
        // The bucket: a burst of 3, then one more per `minRefreshInterval` (1 s here) for as long as the flood
        // lasts. The bound follows the flood's own length, so a slow machine (or a sanitizer) cannot fail it.
        #expect(fetches >= 1 && fetches <= 3 + Int(seconds.rounded(.up)))
    }

    @Test("while the JWKS endpoint hangs, tokens with known kids are decided at once")
    func hangingEndpoint() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let authenticator = try await started([
            provider(server) {
                $0.refresh.refreshInterval = 1
                $0.fetch.timeout = .seconds(30)
            }
        ])
        defer { authenticator.stop() }
        let source = authenticator.sources[0]
        let token = try mint(server)
        _ = try server.command(["cmd": "mode", "mode": "hang", "hang_seconds": 60])
        try await waitUntil("the background refresh to hang") { (try? server.jwksRequestCount()) == 2 }
        var slowest = Duration.zero
        for _ in 0..<100 {
            let start = ContinuousClock.now
            _ = try await decide(authenticator, token).get()
            slowest = max(slowest, ContinuousClock.now - start)
        }
        print("hang: slowest of 100 known-kid decisions while the JWKS server hung: \(slowest)")
        // Ordering, not speed: the refresh is still hanging (it can only end by its 30 s timeout, and no
        // failure has been recorded), so none of the 100 decisions waited for it.
        #expect(source.statistics.fetchFailures == 0 && source.statistics.fetchSuccesses == 1)
        // An unknown kid waits for the (hanging) refetch at most unknownKidWait, then is decided.
        let start = ContinuousClock.now
        let unknown = try mint(server, extra: ["unpublished": true])
        await #expect(throws: TokenRefusal.self) { try await decide(authenticator, unknown).get() }
        print("hang: unknown-kid decision waited \(Self.elapsed(start))")
        // Bounded by unknown_kid_wait (1 s), not by the hanging fetch: that one is still in flight.
        #expect(source.statistics.fetchFailures == 0)
    }

    @Test("500, garbage and an empty set never replace the last good set", arguments: ["error", "garbage", "empty"])
    func failuresKeepLastGoodSet(mode: String) async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let authenticator = try await started([provider(server) { $0.refresh.refreshInterval = 0.3 }])
        defer { authenticator.stop() }
        _ = try server.command(["cmd": "mode", "mode": mode])
        let source = authenticator.sources[0]
        try await waitUntil("a failed refresh") { source.statistics.fetchFailures >= 2 }
        #expect(source.isReady)
        #expect(source.keys.keyIDs == ["k1"])
        _ = try await decide(authenticator, try mint(server)).get()
        // Recovery: the next good fetch counts as a success again.
        _ = try server.command(["cmd": "mode", "mode": "ok"])
        let successes = source.statistics.fetchSuccesses
        try await waitUntil("recovery") { source.statistics.fetchSuccesses > successes }
    }

    @Test("past max_stale without a good fetch, the provider fails closed and is not ready")
    func maxStale() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let authenticator = try await started([
            provider(server) {
                $0.refresh.refreshInterval = 0.3
                $0.refresh.maxStale = 1.5
            }
        ])
        defer { authenticator.stop() }
        let token = try mint(server)
        _ = try server.command(["cmd": "mode", "mode": "error"])
        try await waitUntil("not ready") { !authenticator.isReady }
        #expect(authenticator.readiness[0].reason?.contains("max_stale") == true)
        let refusal = await decide(authenticator, token)
        guard case .failure(let reason) = refusal else {
            Issue.record("a token was accepted past max_stale")
            return
        }
        #expect(reason.reason == .keysUnavailable || reason.reason == .unknownKid)
    }

    @Test("Cache-Control max-age sets the next refresh, clamped to min_refresh_interval")
    func cacheControl() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        _ = try server.command(["cmd": "headers", "cache_control": "max-age=0, must-revalidate"])
        let authenticator = try await started([provider(server)])  // refresh 300 s, min 1 s
        defer { authenticator.stop() }
        try await Task.sleep(for: .milliseconds(2600))
        let fetches = try server.jwksRequestCount()
        // max-age=0 would mean "refetch constantly"; the clamp allows one fetch a second.
        #expect(fetches >= 2 && fetches <= 4)
    }

    @Test("file:// JWKS, inline JWKS and HMAC secrets from the environment and from a file")
    func staticSources() async throws {
        let minted = try MintedTokens.mint()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let jwksFile = directory.appendingPathComponent("jwks.json")
        try Data(minted.asymmetricJWKS.compactJSON.utf8).write(to: jwksFile)
        let secret = try #require(minted.secretBase64URL(.hs256))
        let secretFile = directory.appendingPathComponent("secret")
        try Data((secret + "\n").utf8).write(to: secretFile)
        setenv("PORTCULLIS_TEST_SECRET", secret, 1)

        let fromFileURL = ProviderConfiguration(name: "file", keySource: .jwksURL("file://" + jwksFile.path))
        let inline = ProviderConfiguration(name: "inline", keySource: .inlineJWKS(minted.asymmetricJWKS))
        let envSecret = ProviderConfiguration(
            name: "env", keySource: .secret(try SecretLoading.fromEnvironment("PORTCULLIS_TEST_SECRET", base64: true)))
        let fileSecret = ProviderConfiguration(
            name: "secret-file", keySource: .secret(try SecretLoading.fromFile(secretFile.path, base64: true)))
        for configuration in [fromFileURL, inline, envSecret, fileSecret] {
            var configuration = configuration
            configuration.requireExpiry = true
            let authenticator = try await started([configuration])
            defer { authenticator.stop() }
            let token =
                configuration.name.contains("secret") || configuration.name == "env"
                ? minted.token(.hs256) : minted.token(.es256)
            let verified = try await decide(authenticator, try #require(token)).get()
            #expect(verified.provider == configuration.name)
        }
        #expect(throws: SecretLoading.Failure.self) {
            try SecretLoading.fromEnvironment("PORTCULLIS_UNSET_VARIABLE", base64: false)
        }
        #expect(throws: SecretLoading.Failure.self) {
            try SecretLoading.fromEnvironment("SHORT", base64: false, environment: ["SHORT": "too-short"])
        }
        // PostgREST's plain-text form: the secret's UTF-8 bytes.
        let text = "a-plain-text-secret-of-at-least-32-characters"
        #expect(try SecretLoading.fromEnvironment("S", base64: false, environment: ["S": text]) == Array(text.utf8))
    }

    @Test("OpenID discovery: jwks_uri and issuer from the served openid-configuration")
    func discovery() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let configuration = ProviderConfiguration(name: "oidc", keySource: .discovery(issuer: server.baseURL))
        let authenticator = try await started([configuration])
        defer { authenticator.stop() }
        #expect(authenticator.sources[0].effectiveIssuer == server.baseURL)
        _ = try await decide(authenticator, try mint(server, ["iss": server.baseURL])).get()
        let foreign = await decide(authenticator, try mint(server, ["iss": "https://elsewhere.example/"]))
        #expect(throws: TokenRefusal(.issuerMismatch, "JWT issuer is not accepted")) { try foreign.get() }
    }

    @Test("two providers with different issuers, each with its own role-claim path, in one process")
    func twoProviders() async throws {
        let auth0 = try JWKSTestServer.start()
        defer { auth0.stop() }
        let keycloak = try JWKSTestServer.start()
        defer { keycloak.stop() }
        let authenticator = try await started([
            provider(auth0, name: "auth0") {
                $0.issuer = "https://tenant.auth0.example/"
                $0.roleClaim = try! ClaimPath(#"."https://postgrest-demo.de/role""#)
            },
            provider(keycloak, name: "keycloak") {
                $0.issuer = "https://keycloak.example/realms/app"
                $0.roleClaim = try! ClaimPath("$.realm_access.roles[0]")
            },
        ])
        defer { authenticator.stop() }
        let fromAuth0 = try mint(
            auth0, ["iss": "https://tenant.auth0.example/", "https://postgrest-demo.de/role": "webuser"])
        let fromKeycloak = try mint(
            keycloak, ["iss": "https://keycloak.example/realms/app", "realm_access": ["roles": ["editor", "reader"]]])
        let first = try await decide(authenticator, fromAuth0).get()
        let second = try await decide(authenticator, fromKeycloak).get()
        #expect(first.provider == "auth0" && first.role == "webuser")
        #expect(second.provider == "keycloak" && second.role == "editor")
        // Keycloak's key claiming Auth0's issuer is checked with Auth0's keys only, and refused.
        let forged = try mint(
            keycloak, ["iss": "https://tenant.auth0.example/", "https://postgrest-demo.de/role": "admin"])
        await #expect(throws: TokenRefusal.self) { try await decide(authenticator, forged).get() }
        let stranger = try mint(keycloak, ["iss": "https://unknown.example/"])
        await #expect(throws: TokenRefusal(.unknownProvider, "No provider accepts the JWT's issuer")) {
            try await decide(authenticator, stranger).get()
        }
    }
}
