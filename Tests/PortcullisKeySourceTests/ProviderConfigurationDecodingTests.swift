import Foundation
import PortcullisCore
import PortcullisKeySource
import PortcullisTestSupport
import Testing

@Suite("Provider configuration")
struct ProviderConfigurationDecodingTests {
    func decode(
        _ text: String, environment: [String: String] = [:]
    ) throws -> Result<[ProviderConfiguration], ConfigurationErrors> {
        let root = try #require(try JSONParser().parse(text).objectValue)
        return ProviderConfiguration.decodeAll(from: root, environment: environment)
    }

    func errors(_ text: String, environment: [String: String] = [:]) throws -> [String] {
        guard case .failure(let failure) = try decode(text, environment: environment) else { return [] }
        return failure.errors.map(\.description)
    }

    @Test("provider options override the top-level value of the same name; defaults fill the rest")
    func overrides() throws {
        let providers = try decode(
            """
            {"issuer": "https://top.example/", "audiences": ["top"], "algorithms": ["RS256"], "require_exp": false,
             "clock_skew": "10s", "role_claim_key": ".role",
             "providers": [
               {"name": "a", "jwks_url": "https://a.example/jwks.json"},
               {"name": "b", "discovery": "https://b.example", "issuer": "https://b.example/", "audiences": "b-api",
                "algorithms": ["ES256", "EdDSA"], "require_exp": true, "clock_skew": 5,
                "role_claim_key": "$.realm_access.roles[0]", "refresh_interval": "1m", "max_stale": "2h",
                "timeout": "1500ms", "unknown_kid_wait": "250ms"}
             ]}
            """
        ).get()
        let (a, b) = (providers[0], providers[1])
        let topRole = try ClaimPath(".role")
        let keycloakRole = try ClaimPath("$.realm_access.roles[0]")
        #expect(a.issuer == "https://top.example/" && a.audiences == ["top"] && a.algorithms == [.rs256])
        #expect(!a.requireExpiry && a.clockSkew == 10 && a.roleClaim == topRole)
        #expect(a.keySource == .jwksURL("https://a.example/jwks.json"))
        #expect(a.refresh == RefreshPolicy() && a.unknownKidWait == .seconds(1))
        #expect(b.issuer == "https://b.example/" && b.audiences == ["b-api"] && b.algorithms == [.es256, .eddsa])
        #expect(b.requireExpiry && b.clockSkew == 5 && b.roleClaim == keycloakRole)
        #expect(b.keySource == .discovery(issuer: "https://b.example"))
        #expect(b.refresh.refreshInterval == 60 && b.refresh.maxStale == 7200)
        #expect(b.fetch.timeout == .milliseconds(1500) && b.unknownKidWait == .milliseconds(250))
    }

    @Test("every error is reported at once, each with its JSON path")
    func allErrors() throws {
        let found = try errors(
            """
            {"clock_skew": "soon", "role_claim_key": ".roles[",
             "providers": [
               {"name": "a", "jwks_url": "ftp://a.example/jwks.json", "colour": "blue"},
               {"jwks": {"keys": []}, "secret_env": "X"},
               {"name": "a", "secret_env": "MISSING", "refresh_interval": "0.5s", "algorithms": ["HS256", "none"]},
               "not an object"
             ]}
            """)
        #expect(
            found == [
                "clock_skew: must be a duration such as \"250ms\", \"30s\", \"5m\", \"1h\", or a number of seconds",
                #"role_claim_key: invalid claim path ".roles[": expected an array index or a filter at position 7"#,
                "providers[0].colour: unknown key",
                "providers[0].jwks_url: must be an https://, http:// or file:// URL",
                "providers[1].name: is required",
                "providers[1].secret_env: a provider has exactly one key source; found jwks, secret_env",
                "providers[2].algorithms: \"none\" is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
                "providers[2].secret_env: environment variable MISSING is not set",
                "providers[2].refresh_interval: must be at least 1.0 s",
                "providers[2].name: another provider is named \"a\"",
                "providers[3]: must be an object",
            ])
    }

    @Test("secrets come from the environment, as text or base64")
    func secrets() throws {
        let text = "a-plain-text-secret-of-at-least-32-characters"
        let providers = try decode(
            #"{"providers": [{"name": "s", "secret_env": "JWT_SECRET"}]}"#, environment: ["JWT_SECRET": text]
        ).get()
        #expect(providers[0].keySource == .secret(Array(text.utf8)))
        let short = try errors(
            #"{"providers": [{"name": "s", "secret_env": "S", "secret_base64": true}]}"#, environment: ["S": "c2hvcnQ="]
        )
        #expect(
            short == [
                "providers[0].secret_env: environment variable S holds 40 bits; an HMAC secret needs at least 256"
            ])
        #expect(
            try errors(#"{"providers": [{"name": "s", "jwks_url": "https://x", "secret_base64": true}]}"#) == [
                "providers[0].secret_base64: applies only to secret_env or secret_file"
            ])
    }

    @Test(
        "durations",
        arguments: [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h", 3600), ("1.5s", 1.5)] as [(String, Double)])
    func durations(text: String, seconds: Double) {
        #expect(ConfigurationDuration.seconds(.string(text)) == seconds)
    }

    @Test("not durations", arguments: ["", "s", "5", "5 s", "-1s", "1d", "ms5", "1e3s"])
    func notDurations(_ text: String) {
        #expect(ConfigurationDuration.seconds(.string(text)) == nil)
    }

    @Test("the README's providers example decodes as documented")
    func readmeExample() throws {
        let readme = try String(
            contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```json\n").dropFirst().map {
            $0.components(separatedBy: "```")[0]
        }
        // The "Key sources" section's example: the one naming all four providers.
        let example = try #require(blocks.first { $0.contains("\"providers\"") && $0.contains("\"supabase\"") })
        let providers = try decode(example, environment: ["SUPABASE_JWT_SECRET": String(repeating: "s", count: 40)])
            .get()
        try #require(providers.map(\.name) == ["auth0", "keycloak", "kratos", "supabase"])
        #expect(providers[1].roleClaim != providers[0].roleClaim)
        #expect(providers[0].audiences == ["my-client-id"] && providers[1].audiences == ["account"])
    }

    @Test("providers are required")
    func noProviders() throws {
        #expect(try errors("{}") == ["providers: must be a list with at least one provider"])
        #expect(try errors(#"{"providers": []}"#) == ["providers: must hold at least one provider"])
    }
}
