import PortcullisConfig
import PortcullisCore
import Testing

@testable import PortcullisProxy

/// The identity headers built from a verified token and the `forward` section.
@Suite("Unit: ForwardedIdentity")
struct ForwardedIdentityTests {
    static func forwarding(
        audienceHeader: String? = nil, claimsHeader: String? = nil,
        claims: [(header: String, path: String, join: String?)] = []
    ) throws -> PortcullisConfiguration.Forwarding {
        // The shared configuration's `forward` section, emptied down to the role header.
        var forwarding = try UnitFixtures.forwarding()
        #expect(forwarding.roleHeader == "X-Postgres-Role")
        forwarding.audienceHeader = audienceHeader
        forwarding.claimsHeader = claimsHeader
        forwarding.claims = try claims.map { ($0.header, try ClaimPath($0.path), $0.join) }
        return forwarding
    }

    static func headers(
        _ identity: VerifiedToken?, anonymousRole: String? = "anon", _ forwarding: PortcullisConfiguration.Forwarding
    ) -> [String] {
        ForwardedIdentity.headers(identity: identity, anonymousRole: anonymousRole, forwarding: forwarding)
            .map { "\($0.name): \($0.value)" }
    }

    @Test("an anonymous request gets only the role header, with the anonymous role, and nothing without one")
    func anonymousRequests() throws {
        let forwarding = try Self.forwarding(audienceHeader: "X-Aud", claimsHeader: "X-Claims")
        #expect(Self.headers(nil, forwarding) == ["X-Postgres-Role: anon"])
        #expect(Self.headers(nil, anonymousRole: nil, forwarding).isEmpty)
    }

    @Test("the role: a string as it is, a missing role as the anonymous role, anything else as compact JSON")
    func roleRendering() throws {
        let forwarding = try Self.forwarding()
        let cases: [(role: JSONValue?, header: String)] = [
            ("webuser", "webuser"), (nil, "anon"), (42, "42"), (true, "true"), (.null, "null"),
            (["a", "b"], #"["a","b"]"#), (["b": 1, "a": "x"], #"{"a":"x","b":1}"#), ("José", "José"),
        ]
        for (role, header) in cases {
            let produced = Self.headers(UnitFixtures.token(role: role), forwarding)
            #expect(produced == ["X-Postgres-Role: \(header)"], "\(String(describing: role))")
        }
        #expect(Self.headers(UnitFixtures.token(role: nil), anonymousRole: nil, forwarding).isEmpty)
    }

    @Test("the audience header carries the matched audience, only when configured and matched")
    func audienceHeader() throws {
        let withHeader = try Self.forwarding(audienceHeader: "X-Aud")
        #expect(Self.headers(UnitFixtures.token(role: "r"), withHeader) == ["X-Postgres-Role: r", "X-Aud: api"])
        #expect(Self.headers(UnitFixtures.token(role: "r", audience: nil), withHeader) == ["X-Postgres-Role: r"])
        #expect(Self.headers(UnitFixtures.token(role: "r"), try Self.forwarding()) == ["X-Postgres-Role: r"])
    }

    @Test("claims: a string as is, an absent claim as no header, objects and unjoined arrays as compact JSON")
    func claimHeaders() throws {
        let forwarding = try Self.forwarding(claims: [
            ("X-Sub", "$.sub", nil), ("X-Missing", "$.nope", nil), ("X-Org", "$.org", nil),
            ("X-Groups", "$.groups", nil),
            ("X-Level", ".level", nil),
        ])
        let token = UnitFixtures.token(
            ["sub": "user-1", "org": ["name": "acme", "id": 7], "groups": ["a", "b"], "level": 3], role: "r")
        #expect(
            Self.headers(token, forwarding) == [
                "X-Postgres-Role: r", "X-Sub: user-1", #"X-Org: {"id":7,"name":"acme"}"#, #"X-Groups: ["a","b"]"#,
                "X-Level: 3",
            ])
    }

    @Test("claims with join: an array, or several selected values, become one joined list")
    func joinedClaims() throws {
        let forwarding = try Self.forwarding(claims: [
            ("X-Roles", "$.realm_access.roles", ","), ("X-Ids", "$.accounts[*].id", " "), ("X-One", "$.sub", ","),
            ("X-Mixed", "$.mixed", ";"),
        ])
        let token = UnitFixtures.token(
            [
                "realm_access": ["roles": ["reader", "writer"]],
                "accounts": [["id": 1], ["id": "two"]],
                "sub": "user-1",
                "mixed": ["a", 2, ["k": "v"], .null],
            ], role: "r")
        #expect(
            Self.headers(token, forwarding) == [
                "X-Postgres-Role: r", "X-Roles: reader,writer", "X-Ids: 1 two", "X-One: user-1",
                #"X-Mixed: a;2;{"k":"v"};null"#,
            ])
    }

    @Test("claims_header carries the whole payload as compact JSON with sorted keys, after the other headers")
    func claimsHeaderCarriesPayload() throws {
        let forwarding = try Self.forwarding(
            audienceHeader: "X-Aud", claimsHeader: "X-Claims", claims: [("X-Sub", "$.sub", nil)])
        let token = UnitFixtures.token(["sub": "u", "aud": "api", "exp": 100, "role": "r"], role: "r")
        #expect(
            Self.headers(token, forwarding) == [
                "X-Postgres-Role: r", "X-Aud: api", "X-Sub: u",
                #"X-Claims: {"aud":"api","exp":100,"role":"r","sub":"u"}"#,
            ])
    }

    @Test(
        "header injection: a CR, LF or other control character in a claim never reaches a header value raw",
        arguments: ["x\r\nX-Postgres-Role: admin", "admin\n", "a\rb", "nul\u{0}", "del\u{7F}", "bell\u{7}"])
    func headerInjectionThroughClaims(value: String) throws {
        let forwarding = try Self.forwarding(
            audienceHeader: "X-Aud", claimsHeader: "X-Claims",
            claims: [("X-Sub", "$.sub", nil), ("X-Roles", "$.roles", ","), ("X-Org", "$.org", nil)])
        let token = UnitFixtures.token(
            ["sub": .string(value), "roles": ["ok", .string(value)], "org": ["name": .string(value)]],
            role: .string(value))
        let headers = ForwardedIdentity.headers(identity: token, anonymousRole: "anon", forwarding: forwarding)
        #expect(headers.map(\.name) == ["X-Postgres-Role", "X-Aud", "X-Sub", "X-Roles", "X-Org", "X-Claims"])
        for header in headers {
            #expect(
                !header.value.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "\(header.name) holds a control character")
        }
        // Sent as JSON text: the upstream sees a quoted string, never the role the text spells.
        let role = try #require(headers.first?.value)
        #expect(role == JSONValue.string(value).compactJSON)
        #expect(role.hasPrefix("\"") && role.hasSuffix("\""))
        #expect(try JSONParser().parse(role) == .string(value))
        #expect(headers[3].value == "ok," + JSONValue.string(value).compactJSON)
    }

    @Test(
        "role spoofing by whitespace: a value with leading or trailing blanks is sent as JSON text, not trimmed",
        arguments: [" admin", "admin ", "\tadmin", "admin\t", " "])
    func roleSpoofingByWhitespace(role: String) throws {
        let produced = Self.headers(UnitFixtures.token(role: .string(role)), try Self.forwarding())
        #expect(produced == ["X-Postgres-Role: \(JSONValue.string(role).compactJSON)"])
    }

    @Test("inner spaces and tabs are valid in a field value and pass as they are")
    func innerWhitespacePasses() throws {
        let produced = Self.headers(UnitFixtures.token(role: "a b\tc"), try Self.forwarding())
        #expect(produced == ["X-Postgres-Role: a b\tc"])
    }
}
