import Foundation
import PortcullisConfig
import PortcullisCore
import PortcullisCrypto
import PortcullisKeySource
import PortcullisTestSupport
import Testing

/// The configurations in `examples/` (explained in the README's "Setups") and the shipped `config.json`: each
/// must stay valid as the schema changes, and must still say what its README section says it does.
@Suite("Example configurations")
struct ExampleConfigurationTests {
    static let folder = repositoryRoot.appendingPathComponent("examples")
    /// The Appwrite example reads its HMAC secret from the environment; any 32 bytes do here.
    static let environment = ["APPWRITE_JWT_SECRET": String(repeating: "s", count: 32)]

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: folder.appendingPathComponent(name)))
    }

    static func load(_ name: String) throws -> PortcullisConfiguration {
        try PortcullisConfiguration.decode(bytes(name), environment: environment).get()
    }

    @Test("every examples/*.json and the top-level config.json decode without errors")
    func everyExampleDecodes() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        #expect(
            names == [
                "appwrite-header.json", "keycloak-roles.json", "kratos-eddsa-file.json", "postgrest-auth0.json",
                "rotation-two-keys.json",
            ])
        for name in names {
            if case .failure(let failure) = PortcullisConfiguration.decode(
                try Self.bytes(name), environment: Self.environment)
            {
                Issue.record("examples/\(name): \(failure)")
            }
        }
        let shipped = try Data(contentsOf: repositoryRoot.appendingPathComponent("config.json"))
        if case .failure(let failure) = PortcullisConfiguration.decode(Array(shipped), environment: [:]) {
            Issue.record("config.json: \(failure)")
        }
    }

    @Test("PostgREST behind Auth0: RS256 from the tenant's JWKS, the namespaced role claim, anonymous reads")
    func postgrestAuth0() throws {
        let configuration = try Self.load("postgrest-auth0.json")
        #expect(configuration.providers.count == 1)
        let provider = try #require(configuration.providers.first)
        #expect(provider.keySource == .jwksURL("https://YOUR_TENANT.auth0.com/.well-known/jwks.json"))
        #expect(provider.issuer == "https://YOUR_TENANT.auth0.com/")
        #expect(provider.audiences == ["YOUR_CLIENT_ID"] && provider.algorithms == [.rs256])
        // The top-level role_claim_key is inherited by the provider.
        let claims: JSONValue = ["sub": "auth0|5f7c", "https://postgrest-demo.de/role": "webuser"]
        #expect(provider.roleClaim?.firstValue(in: claims) == "webuser")
        #expect(configuration.anonymousRole == "web_anon")
        #expect(configuration.forward.roleHeader == "X-Postgres-Role")
        #expect(configuration.forward.keepAuthorization, "PostgREST verifies the same token again")
        #expect(configuration.errorFormat == .postgrest)
        // CORS preflights pass untouched, reads take an optional token, everything else needs one.
        let rules = configuration.rules
        #expect(rules.match(method: "OPTIONS", path: try RequestPath("/todos")).auth == .none)
        #expect(rules.match(method: "GET", path: try RequestPath("/todos")).auth == .optional)
        #expect(rules.match(method: "HEAD", path: try RequestPath("/todos")).auth == .optional)
        #expect(rules.match(method: "POST", path: try RequestPath("/rpc/add_todo")).auth == .required)
        #expect(rules.match(method: "DELETE", path: try RequestPath("/todos")).auth == .required)
    }

    @Test("Appwrite: the raw X-Appwrite-JWT header, HS256 with the secret from the environment")
    func appwrite() throws {
        let configuration = try Self.load("appwrite-header.json")
        let source = TokenSource.header(name: "X-Appwrite-JWT", scheme: nil)
        #expect(configuration.tokenSources == [source])
        // The whole header value is the token; an Authorization header is not a token source here.
        let extractor = TokenExtractor(sources: configuration.tokenSources)
        #expect(
            extractor.extract(headers: [(name: "x-appwrite-jwt", value: "a.b.c")], query: nil)
                == .token("a.b.c", source: source))
        #expect(extractor.extract(headers: [(name: "Authorization", value: "Bearer a.b.c")], query: nil) == .none)

        let provider = try #require(configuration.providers.first)
        #expect(provider.keySource == .secret(Array(Self.environment["APPWRITE_JWT_SECRET"]!.utf8)))
        #expect(provider.algorithms == [.hs256] && provider.requireExpiry)
        #expect(provider.issuer == nil && provider.audiences.isEmpty && provider.roleClaim == nil)
        #expect(configuration.forward.claims.map(\.header) == ["X-Session-Id", "X-User-Id"])
        #expect(!configuration.forward.keepAuthorization)

        // The secret is read when the configuration is: unset, or shorter than 256 bits, is an error.
        let unset = PortcullisConfiguration.decode(try Self.bytes("appwrite-header.json"), environment: [:])
        #expect(
            unset.failureDescriptions == [
                "providers[0].secret_env: environment variable APPWRITE_JWT_SECRET is not set"
            ])
        let short = PortcullisConfiguration.decode(
            try Self.bytes("appwrite-header.json"), environment: ["APPWRITE_JWT_SECRET": "your-secret-key"])
        #expect(
            short.failureDescriptions == [
                "providers[0].secret_env: environment variable APPWRITE_JWT_SECRET holds 120 bits; an HMAC secret needs at least 256"
            ])
    }

    @Test("Kratos: EdDSA only, keys from a file:// JWKS; examples/keys/kratos-jwks.json is one public Ed25519 key")
    func kratos() throws {
        let configuration = try Self.load("kratos-eddsa-file.json")
        let provider = try #require(configuration.providers.first)
        #expect(provider.keySource == .jwksURL("file:///etc/portcullis/jwks.json"))
        #expect(provider.algorithms == [.eddsa] && provider.issuer == "https://auth.example.com/")
        #expect(provider.refresh.refreshInterval == 60)
        #expect(provider.roleClaim?.firstValue(in: ["sub": "9d1e", "role": "admin"]) == "admin")
        let admin = configuration.rules.match(method: "GET", path: try RequestPath("/admin"))
        #expect(admin.roles == ["admin"] && !admin.admits(role: nil))

        let (keys, skipped) = try KeySetLoader.openSSL.load(jwks: try Self.bytes("keys/kratos-jwks.json"))
        #expect(skipped.isEmpty, "nothing private, nothing unusable")
        #expect(keys.keyIDs == ["kratos-2025-01"])
        #expect(keys.keys.map(\.type) == [.ed25519] && keys.keys.map(\.algorithm) == [.eddsa])
    }

    @Test("Keycloak: the realm roles array gates routes when any element is listed, and is forwarded comma-joined")
    func keycloak() throws {
        let configuration = try Self.load("keycloak-roles.json")
        let provider = try #require(configuration.providers.first)
        #expect(
            provider.keySource
                == .jwksURL("https://keycloak.example/realms/myrealm/protocol/openid-connect/certs"))
        #expect(provider.issuer == "https://keycloak.example/realms/myrealm")
        #expect(provider.audiences == ["my-api"] && provider.algorithms == [.rs256])

        // The README's sample access token for alice, without the claims nothing here reads.
        let payload: JSONValue = [
            "iss": "https://keycloak.example/realms/myrealm", "aud": ["my-api", "account"], "sub": "4b8e2f6a",
            "azp": "my-spa", "preferred_username": "alice",
            "realm_access": ["roles": ["default-roles-myrealm", "offline_access", "uma_authorization", "analyst"]],
        ]
        let role = provider.roleClaim?.firstValue(in: payload)
        #expect(role == ["default-roles-myrealm", "offline_access", "uma_authorization", "analyst"])
        let rules = configuration.rules
        let admin = rules.match(method: "DELETE", path: try RequestPath("/admin/users/7"))
        let reports = rules.match(method: "GET", path: try RequestPath("/reports/2025-q3"))
        let orders = rules.match(method: "POST", path: try RequestPath("/orders"))
        #expect(admin.roles == ["admin"] && !admin.admits(role: role))
        #expect(reports.roles == ["analyst", "admin"] && reports.admits(role: role))
        #expect(admin.admits(role: ["default-roles-myrealm", "admin"]))
        #expect(orders.roles == nil && orders.admits(role: role))
        // The rules name no methods, so every method is gated alike.
        #expect(rules.match(method: "POST", path: try RequestPath("/reports/2025-q3")).roles == ["analyst", "admin"])

        #expect(configuration.forward.claims.map(\.header) == ["X-User-Id", "X-User-Name", "X-User-Roles"])
        let roles = try #require(configuration.forward.claims.first { $0.header == "X-User-Roles" })
        #expect(roles.join == "," && roles.path.values(in: payload) == [role!])
        #expect(configuration.forward.roleHeader == "X-Realm-Roles-Json")
    }

    @Test("key rotation: two RSA keys with their own kids, both usable while both are published")
    func rotation() throws {
        let configuration = try Self.load("rotation-two-keys.json")
        let provider = try #require(configuration.providers.first)
        guard case .inlineJWKS(let jwks) = provider.keySource else {
            Issue.record("expected an inline JWKS, got \(provider.keySource)")
            return
        }
        let (keys, skipped) = try KeySetLoader.openSSL.load(jwks: Array(jwks.compactJSON.utf8))
        #expect(skipped.isEmpty, "nothing private, nothing unusable, no shared kid")
        #expect(keys.keyIDs == ["2025-01", "2025-07"])
        #expect(keys.keys.allSatisfy { $0.type == .rsa(modulusBits: 2048) && $0.algorithm == .rs256 })
        #expect(provider.algorithms == [.rs256] && provider.audiences == ["orders-api"])
    }
}

extension Result where Failure == ConfigurationErrors {
    /// The errors' descriptions, or an empty list when decoding succeeded.
    fileprivate var failureDescriptions: [String] {
        if case .failure(let failure) = self { failure.errors.map(\.description) } else { [] }
    }
}
