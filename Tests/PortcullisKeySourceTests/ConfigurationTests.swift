import Foundation
import PortcullisConfig
import PortcullisCore
import PortcullisKeySource
import PortcullisTestSupport
import Testing

@Suite("config.json")
struct ConfigurationTests {
    func decode(
        _ text: String, environment: [String: String] = [:]
    ) -> Result<PortcullisConfiguration, ConfigurationErrors> {
        PortcullisConfiguration.decode(Array(text.utf8), environment: environment)
    }

    @Test("the shipped config.json is valid")
    func shipped() throws {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("config.json"))
        let configuration = try PortcullisConfiguration.decode(Array(data)).get()
        #expect(configuration.providers.map(\.name) == ["demo"])
        #expect(configuration.rules.rules.count == 4)
        #expect(
            configuration.forward.ownedHeaders == ["X-Postgres-Role", "X-Jwt-Audience", "X-User-Id", "X-User-Roles"])
    }

    @Test("the reference schema from the design decodes, with every default")
    func referenceSchema() throws {
        let configuration = try decode(
            """
            {"listen": "127.0.0.1:8080", "upstream": "http://127.0.0.1:3000",
             "token_sources": [{"header": "Authorization", "scheme": "Bearer"}],
             "providers": [{"name": "auth0", "jwks_url": "https://tenant.auth0.com/.well-known/jwks.json",
                            "issuer": "https://tenant.auth0.com/", "audiences": ["client-id"], "algorithms": ["RS256"]}],
             "clock_skew": "30s", "role_claim_key": ".\\"https://postgrest-demo.de/role\\"",
             "anonymous_role": "api_anon",
             "forward": {"role_header": "X-Postgres-Role", "audience_header": "X-Jwt-Audience",
                         "claims": {"X-User-Id": "$.sub"}, "authorization": "keep"},
             "rules": [{"path": "/public/*", "methods": ["GET"], "auth": "optional"},
                       {"path": "/admin/*", "auth": "required", "roles": ["admin"]}]}
            """
        ).get()
        #expect(configuration.listen.host == "127.0.0.1" && configuration.listen.port == 8080)
        #expect(configuration.upstream == .init(url: "http://127.0.0.1:3000"))
        #expect(configuration.tokenSources == [.header(name: "Authorization", scheme: "Bearer")])
        #expect(configuration.anonymousRole == "api_anon" && configuration.errorFormat == .portcullis)
        #expect(configuration.providers[0].roleClaim == (try? ClaimPath(#"."https://postgrest-demo.de/role""#)))
        #expect(configuration.forward.keepAuthorization && configuration.forward.claims.map(\.header) == ["X-User-Id"])
        #expect(configuration.limits == PortcullisConfiguration.Limits())
        let admin = configuration.rules.match(method: "POST", path: try RequestPath("/admin/users"))
        #expect(admin.roles == ["admin"])
    }

    @Test("an object upstream, limits, other token sources and PostgREST errors")
    func variants() throws {
        let configuration = try decode(
            """
            {"upstream": {"url": "http://10.0.0.5:3000", "connect_timeout": "500ms", "timeout": "1m", "max_idle": 4},
             "token_sources": [{"header": "X-Appwrite-JWT"}, {"query": "access_token"}, {"cookie": "sb-access-token"}],
             "providers": [{"name": "appwrite", "secret_env": "APPWRITE_SECRET"}],
             "error_format": "postgrest", "limits": {"max_body_bytes": 1048576, "header_timeout": "5s"},
             "forward": {"claims": {"X-Roles": {"path": ".realm_access.roles", "join": ","}}, "authorization": "strip",
                         "claims_header": "X-Jwt-Claims"}}
            """, environment: ["APPWRITE_SECRET": String(repeating: "k", count: 32)]
        ).get()
        #expect(configuration.upstream.connectTimeout == 0.5 && configuration.upstream.timeout == 60)
        #expect(configuration.upstream.maxIdle == 4)
        #expect(
            configuration.tokenSources == [
                .header(name: "X-Appwrite-JWT", scheme: nil), .query(name: "access_token"),
                .cookie(name: "sb-access-token"),
            ])
        #expect(configuration.errorFormat == .postgrest && !configuration.forward.keepAuthorization)
        #expect(configuration.limits.maxBodyBytes == 1_048_576 && configuration.limits.headerTimeout == 5)
        #expect(configuration.forward.claims.first?.join == ",")
    }

    /// The errors decoding `text` reports, each with its path; none when it decodes.
    func errorMessages(_ text: String) -> [String] {
        guard case .failure(let failure) = decode(text) else { return [] }
        return failure.errors.map(\.description)
    }

    @Test("every error at once, each with its JSON path")
    func errors() {
        let text = """
            {"listen": "x", "upstream": "ftp://a", "providers": [{"name": "a"}], "bogus": 1,
             "token_sources": [{"header": "Bad Header"}, {"query": "q", "cookie": "c"}],
             "rules": [{"path": "admin", "auth": "maybe"}, {"path": "/x", "auth": "none", "roles": ["r"]}],
             "forward": {"role_header": "Host", "claims": {"X-A": "$.a.", "X-Postgres-Role": ".role"}},
             "limits": {"max_header_bytes": 10}}
            """
        #expect(
            errorMessages(text) == [
                "bogus: unknown key",
                "providers[0].jwks_url: a provider needs one key source: jwks_url, jwks, secret_env, secret_file or discovery",
                "listen: must be host:port, e.g. \"127.0.0.1:8080\"",
                "upstream: must be an http:// URL with a host, e.g. \"http://127.0.0.1:3000\"",
                "token_sources[0].header: is not a valid header name",
                "token_sources[1].cookie: needs exactly one of header, query or cookie",
                "rules[0].auth: must be \"none\", \"optional\" or \"required\"",
                "rules[0].path: The request path must start with '/'",
                "rules[1].auth: a rule with auth \"none\" cannot require roles or scopes",
                "forward.role_header: \"Host\" cannot be set by Portcullis",
                #"forward.claims.X-A: invalid claim path "$.a.": expected a member name or '*' after '.' at position 4"#,
                "forward.claims: header \"X-Postgres-Role\" is set twice",
                "limits.max_header_bytes: must be a whole number from 1024 to 1048576",
            ])
    }

    @Test("a duration over a year is refused where it is written: it once passed check and crashed serve")
    func durationOverflow() {
        let text = """
            {"upstream": {"url": "http://127.0.0.1:3000", "timeout": 1e12},
             "providers": [{"name": "a", "jwks_url": "https://a.example/jwks.json", "max_stale": "99999999999h"}],
             "limits": {"idle_timeout": "8761h"}, "drain_timeout": "8760h"}
            """
        #expect(
            errorMessages(text) == [
                "providers[0].max_stale: must be at most 8760h (a year)",
                "upstream.timeout: must be at most 8760h (a year)",
                "limits.idle_timeout: must be at most 8760h (a year)",
            ])
    }

    @Test("`portcullis check` exits 0 with a summary, or 1 with every error")
    func checkCommand() throws {
        let good = try CommandLineTests.run([
            "check", "--config", repositoryRoot.appendingPathComponent("config.json").path,
        ])
        #expect(good.status == 0 && good.output.contains("OK") && good.output.contains("provider demo"))
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID()).json")
        try Data(#"{"upstream": "http://a:1", "providers": [], "colour": 1}"#.utf8).write(to: bad)
        defer { try? FileManager.default.removeItem(at: bad) }
        let refused = try CommandLineTests.run(["check", "--config", bad.path])
        #expect(refused.status == 1)
        #expect(refused.output.contains("2 error(s)") && refused.output.contains("colour: unknown key"))
    }
}
