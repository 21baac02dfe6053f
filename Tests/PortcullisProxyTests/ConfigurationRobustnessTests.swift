import Foundation
import Logging
import PortcullisConfig
import PortcullisCore
import PortcullisKeySource
import PortcullisProxy
import PortcullisTestSupport
import Testing

/// config.json is read again on every SIGHUP, by the running proxy: a configuration that passes
/// `portcullis check` and then traps while the server is built from it would take the proxy down. So
/// mutated configurations go through everything `serve` does before it binds: decoding, then the key
/// sources and the proxy's settings for each one that decodes. None may trap; each is refused with errors
/// or built.
@Suite("configuration robustness")
struct ConfigurationRobustnessTests {
    /// The shipped configurations, and one that sets every option, so that edits land on each of them.
    static let seeds = ["config.json", "deploy/config.compose.json", everyOption]
    static let everyOption = """
        {"listen": "127.0.0.1:8080", "admin": {"listen": "127.0.0.1:9901"}, "mode": "proxy", "drain_timeout": "15s",
         "upstream": {"url": "http://127.0.0.1:3000", "connect_timeout": "1s", "timeout": "30s", "max_idle": 64},
         "token_sources": [{"header": "Authorization", "scheme": "Bearer"}, {"header": "X-Appwrite-JWT"},
                           {"query": "access_token"}, {"cookie": "access_token"}],
         "clock_skew": "30s", "role_claim_key": "$.realm_access.roles[0]", "anonymous_role": "web_anon",
         "providers": [
           {"name": "a", "jwks_url": "https://a.example/jwks.json", "issuer": "https://a.example/",
            "audiences": ["api"], "algorithms": ["RS256", "ES256"], "require_exp": true, "clock_skew": "10s",
            "role_claim_key": ".role", "refresh_interval": "5m", "min_refresh_interval": "30s",
            "max_refresh_interval": "1h", "max_stale": "2h", "connect_timeout": "2s", "timeout": "5s",
            "unknown_kid_wait": "1s"},
           {"name": "b", "discovery": "https://b.example"},
           {"name": "c", "secret_env": "PORTCULLIS_SECRET", "algorithms": ["HS256"]}],
         "forward": {"role_header": "X-Postgres-Role", "audience_header": "X-Jwt-Audience",
                     "claims": {"X-User-Id": "$.sub", "X-Roles": {"path": "$.realm_access.roles", "join": ","}},
                     "claims_header": "X-Jwt-Claims", "authorization": "strip"},
         "rules": [{"path": "/health", "methods": ["GET"], "auth": "none"},
                   {"path": "/public/*", "methods": ["GET", "HEAD"], "auth": "optional"},
                   {"path": "/admin/*", "auth": "required", "roles": ["admin"], "scopes": ["write"]}],
         "limits": {"max_header_bytes": 16384, "header_timeout": "10s", "idle_timeout": "60s",
                    "max_connections": 1024, "max_body_bytes": 1048576, "max_token_bytes": 8192},
         "error_format": "postgrest"}
        """
    static let mutantsPerSeed = 5_000
    static let environment = ["PORTCULLIS_SECRET": String(repeating: "s", count: 48)]

    /// Edits aimed at a configuration: option names, and the edge cases of durations, URLs, addresses, claim
    /// paths, rule paths and header names.
    static let mutator = JSONMutator(
        keys: [
            "listen", "upstream", "url", "timeout", "connect_timeout", "max_idle", "token_sources", "header", "scheme",
            "query", "cookie", "providers", "name", "jwks_url", "jwks", "secret_env", "secret_file", "secret_base64",
            "discovery", "issuer", "audiences", "algorithms", "clock_skew", "role_claim_key", "anonymous_role",
            "forward",
            "role_header", "audience_header", "claims", "claims_header", "authorization", "rules", "path", "methods",
            "auth", "roles", "scopes", "limits", "max_header_bytes", "header_timeout", "idle_timeout",
            "max_connections",
            "max_body_bytes", "max_token_bytes", "error_format", "admin", "mode", "drain_timeout", "refresh_interval",
            "min_refresh_interval", "max_refresh_interval", "max_stale", "unknown_kid_wait", "require_exp", "join",
        ],
        strings: [
            "", " ", "0", "-1", "-1s", "0ms", "0.0000001ms", "1e999", "99999999999999999999h", "8760h", "1.5m",
            "PORTCULLIS_SECRET", "http://", "http://[::1]:99999", "http://127.0.0.1:0", "https://a.example/jwks.json",
            "file:///nonexistent/jwks.json", "file://", "ftp://x", "127.0.0.1:0", "127.0.0.1:65536", ":80",
            "[::1]:8080",
            "$", ".", "$.", "$..a", ".a[", ".a[-1]", ".a[99999999999999999999]", "$.a[?(@ == \"x\")]", ".\"x", "*",
            "/*", "/", "//", "/a/../b", "/%2e%2e/", "/a*b", "GET", "get", "X-Postgres-Role", "Host", "host",
            "Authorization", "Bad Header", "X-A\r\nX-B", "none", "optional", "required", "postgrest", "strip", "keep",
            "forward_auth", "proxy", "RS256", "none", "HS256", ",", "\u{0}", "é", String(repeating: "a", count: 10_000),
        ],
        numbers: [
            "0", "-1", "1", "0.5", "1e308", "-1e308", "9223372036854775807", "18446744073709551616",
            "65535", "65536", "1e-300", "3.0",
        ],
        specials: ["*", "$", ".", "[", "]", "\"", "?", "@", "%", ":", " ", "/", "-", "é", "9"])

    @Test(
        "mutated configurations are refused with errors or start; none traps", arguments: seeds.indices)
    func mutatedConfigurations(seedIndex: Int) throws {
        let seed = Self.seeds[seedIndex]
        let text =
            seed.hasPrefix("{")
            ? Array(seed.utf8) : Array(try Data(contentsOf: repositoryRoot.appendingPathComponent(seed)))
        let original = try JSONParser().parse(text)
        try #require(
            PortcullisConfiguration.decode(text, environment: Self.environment).get().listen.port == 8080,
            "the seed itself must be valid")
        var generator = SplitMix64(seed: 0xC0DF_1600 + UInt64(seedIndex))
        let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
        let metrics = ProxyMetrics()
        let fetcher = CurlFetcher()
        var started = 0
        for _ in 0..<Self.mutantsPerSeed {
            var mutant = original
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                Self.mutator.mutate(&mutant, using: &generator)
            }
            let decoded = PortcullisConfiguration.decode(Array(mutant.compactJSON.utf8), environment: Self.environment)
            guard case .success(let configuration) = decoded else { continue }
            let authenticator = TokenAuthenticator(providers: configuration.providers, fetcher: fetcher, logger: logger)
            do {
                _ = try ProxySettings(
                    configuration: configuration,
                    authorizer: Authorizer(authenticator: authenticator, metrics: metrics),
                    metrics: metrics, logger: logger, clock: { 0 })
                started += 1
            } catch {
                // A startup error is a refusal too, reported by serve and by a reload.
            }
        }
        // Enough mutants survive decoding for the startup steps to be exercised, not just the decoder.
        #expect(started > Self.mutantsPerSeed / 20, "only \(started) mutants got through decoding and startup")
    }
}
