import PortcullisCore
import Testing

@Suite("Policy: access rules")
struct PolicyAccessRuleTests {
    private func covers(_ pattern: String, _ path: String) throws -> Bool {
        try PathPattern(pattern).matches(RequestPath(path))
    }

    // MARK: - Path patterns

    @Test("an exact pattern covers its path, with or without one trailing slash")
    func exact() throws {
        #expect(try covers("/admin", "/admin"))
        #expect(try covers("/admin", "/admin/"))
        #expect(try covers("/admin/", "/admin"))
        #expect(try covers("/admin/", "/admin/"))
        #expect(try !covers("/admin", "/admin/x"))
        #expect(try !covers("/admin", "/administrator"))
        #expect(try !covers("/admin", "/Admin"))
        #expect(try !covers("/admin", "/"))
        #expect(try covers("/", "/"))
        #expect(try !covers("/", "/a"))
    }

    @Test("a /prefix/* pattern covers /prefix, /prefix/ and everything under it, and nothing beside it")
    func prefix() throws {
        for path in ["/public", "/public/", "/public/x", "/public/a/b/c", "/public/x/"] {
            #expect(try covers("/public/*", path), "\(path)")
        }
        for path in ["/publicity", "/pub", "/", "/other/public/x", "/Public/x"] {
            #expect(try !covers("/public/*", path), "\(path)")
        }
    }

    @Test("/* covers every path")
    func everything() throws {
        for path in ["/", "/a", "/a/b/", "/%2F"] {
            #expect(try covers("/*", path))
            #expect(try PathPattern.everything.matches(RequestPath(path)))
        }
        #expect(PathPattern.everything.description == "/*")
    }

    @Test("a * after anything but a slash is a plain prefix")
    func plainPrefix() throws {
        for path in ["/api", "/apis", "/api/x", "/api-v2/x"] {
            #expect(try covers("/api*", path), "\(path)")
        }
        #expect(try !covers("/api*", "/ap"))
    }

    @Test("only a final * is a wildcard")
    func literalStar() throws {
        #expect(try covers("/a*b", "/a*b"))
        #expect(try !covers("/a*b", "/axb"))
        #expect(try !covers("/a*b", "/a*bc"))
    }

    @Test("patterns are normalized like paths, and compared with normalized paths")
    func normalizedPatterns() throws {
        #expect(try covers("/%7Euser/*", "/~user/x"))
        #expect(try covers("/~user/*", "/%7euser/x"))
        #expect(try covers("/a/./b", "/a//b"))
        #expect(try covers("/files/a%2fb", "/files/a%2Fb"))
        #expect(try !covers("/files/a/b", "/files/a%2Fb"))
        // The classic bypasses land outside the public prefix once normalized.
        #expect(try !covers("/public/*", "/public/../admin"))
        #expect(try !covers("/public/*", "/public/%2e%2e/admin"))
        #expect(try !covers("/public/*", "/public/x/../../admin"))
        #expect(try PathPattern("/public/*").description == "/public/*")
    }

    @Test("bad patterns are refused like bad paths")
    func badPatterns() {
        #expect(throws: RequestPathRefusal.self) { try PathPattern("public/*") }
        #expect(throws: RequestPathRefusal.self) { try PathPattern("*") }
        #expect(throws: RequestPathRefusal.self) { try PathPattern("/../*") }
        #expect(throws: RequestPathRefusal.self) { try PathPattern("/a%zz") }
        #expect(throws: RequestPathRefusal.self) { try AccessRule(path: "/a\\b") }
    }

    // MARK: - Methods and rule sets

    @Test("methods: nil covers all, names are uppercased and compared ignoring ASCII case")
    func methods() throws {
        let path = try RequestPath("/x")
        let any = try AccessRule(path: "/x")
        #expect(any.methods == nil)
        #expect(any.matches(method: "DELETE", path: path))
        let reads = try AccessRule(path: "/x", methods: ["GET", "head"])
        #expect(reads.methods == ["GET", "HEAD"])
        #expect(reads.matches(method: "GET", path: path))
        #expect(reads.matches(method: "get", path: path))
        #expect(reads.matches(method: "HEAD", path: path))
        #expect(!reads.matches(method: "POST", path: path))
        #expect(!reads.matches(method: "GETX", path: path))
        #expect(!reads.matches(method: "GET", path: try RequestPath("/y")))
        let never = try AccessRule(path: "/x", methods: [])
        #expect(!never.matches(method: "GET", path: path))
    }

    @Test("the first matching rule wins, in configured order")
    func firstMatchWins() throws {
        let rules = RuleSet([
            try AccessRule(path: "/public/*", methods: ["GET"], auth: .none),
            try AccessRule(path: "/public/*", auth: .required, roles: ["editor"]),
            try AccessRule(path: "/admin/*", roles: ["admin"]),
            try AccessRule(path: "/profile", auth: .optional),
            try AccessRule(path: "/*", auth: .optional, scopes: ["read"]),
        ])
        func rule(_ method: String, _ path: String) throws -> AccessRule {
            rules.match(method: method, path: try RequestPath(path))
        }
        #expect(try rule("GET", "/public/x") == rules.rules[0])
        #expect(try rule("POST", "/public/x") == rules.rules[1])
        #expect(try rule("GET", "/admin") == rules.rules[2])
        #expect(try rule("GET", "/admin/users") == rules.rules[2])
        #expect(try rule("GET", "/profile/") == rules.rules[3])
        #expect(try rule("GET", "/other") == rules.rules[4])
        // Matching sees the normalized path only.
        #expect(try rule("GET", "/public/../admin/users") == rules.rules[2])
        #expect(try rule("GET", "/public/%2e%2e/admin") == rules.rules[2])
        #expect(try rule("GET", "//public//x") == rules.rules[0])
    }

    @Test("no matching rule gives the fallback: a valid token, no roles, no scopes")
    func fallback() throws {
        let rules = RuleSet([try AccessRule(path: "/public/*", auth: .none)])
        let rule = rules.match(method: "GET", path: try RequestPath("/private"))
        #expect(rule == AccessRule.fallback)
        #expect(rule.auth == .required)
        #expect(rule.roles == nil && rule.scopes == nil && rule.methods == nil)
        #expect(rule.path == PathPattern.everything)
        #expect(RuleSet([]).match(method: "GET", path: try RequestPath("/")) == .fallback)
        // The default for a configured rule is also `required`.
        #expect(try AccessRule(path: "/x").auth == .required)
    }

    // MARK: - Roles

    @Test("roles: nil admits anything, even no role")
    func anyRole() throws {
        let rule = try AccessRule(path: "/x")
        for role: JSONValue? in [nil, "anything", 1, .null, ["a"]] {
            #expect(rule.admits(role: role))
        }
    }

    @Test("a string role must be listed exactly")
    func stringRole() throws {
        let rule = try AccessRule(path: "/x", roles: ["webuser", "admin"])
        #expect(rule.admits(role: "admin"))
        #expect(rule.admits(role: "webuser"))
        #expect(!rule.admits(role: "Admin"))
        #expect(!rule.admits(role: "admin "))
        #expect(!rule.admits(role: ""))
        #expect(!rule.admits(role: nil))
    }

    @Test("roles compare by Unicode scalars, not canonical equivalence")
    func unicodeRoles() throws {
        let precomposed = "r\u{F4}le"
        let decomposed = "ro\u{302}le"
        #expect(precomposed == decomposed)  // Swift's ==, which the check must not use.
        let rule = try AccessRule(path: "/x", roles: [precomposed])
        #expect(rule.admits(role: .string(precomposed)))
        #expect(!rule.admits(role: .string(decomposed)))
    }

    @Test("an array role is admitted when any string element is listed")
    func arrayRole() throws {
        let rule = try AccessRule(path: "/x", roles: ["admin"])
        #expect(rule.admits(role: ["offline_access", "admin"]))
        #expect(!rule.admits(role: ["offline_access", "user"]))
        #expect(!rule.admits(role: []))
        #expect(!rule.admits(role: [["admin"]]))
        #expect(!rule.admits(role: [1, true, .null]))
    }

    @Test("numbers, bools, null and objects never match, even when their JSON text is listed")
    func nonStringRoles() throws {
        let rule = try AccessRule(path: "/x", roles: ["1", "true", "null", "{\"r\":\"admin\"}", "admin"])
        #expect(!rule.admits(role: 1))
        #expect(!rule.admits(role: true))
        #expect(!rule.admits(role: .null))
        #expect(!rule.admits(role: ["r": "admin"]))
    }

    @Test("an empty role list admits no one")
    func emptyRoles() throws {
        let rule = try AccessRule(path: "/x", roles: [])
        #expect(!rule.admits(role: "admin"))
        #expect(!rule.admits(role: nil))
    }

    // MARK: - Scopes

    @Test("scopes: all must be granted by scope (space-separated) or scp (array)")
    func scopes() throws {
        let rule = try AccessRule(path: "/x", scopes: ["read", "write"])
        #expect(rule.missingScopes(in: ["scope": "read write"]).isEmpty)
        #expect(rule.missingScopes(in: ["scope": "write openid read"]).isEmpty)
        #expect(rule.missingScopes(in: ["scope": "read"]) == ["write"])
        #expect(rule.missingScopes(in: ["scope": "Read Write"]) == ["read", "write"])
        #expect(rule.missingScopes(in: ["scope": "read:all writer"]) == ["read", "write"])
        #expect(rule.missingScopes(in: ["scp": ["read", "write"]]).isEmpty)
        #expect(rule.missingScopes(in: ["scp": ["read"]]) == ["write"])
        #expect(rule.missingScopes(in: [:]) == ["read", "write"])
    }

    @Test("scope and scp are unioned, each as a string or an array")
    func scopeSources() throws {
        let rule = try AccessRule(path: "/x", scopes: ["read", "write"])
        #expect(rule.missingScopes(in: ["scope": "read", "scp": ["write"]]).isEmpty)
        // Microsoft Entra: scp as a space-separated string.
        #expect(rule.missingScopes(in: ["scp": "read write"]).isEmpty)
        #expect(rule.missingScopes(in: ["scope": ["read", "write"]]).isEmpty)
        // Extra spaces are not scopes.
        #expect(rule.missingScopes(in: ["scope": "  read   write "]).isEmpty)
        #expect(
            AccessRule.grantedScopes(in: ["scope": " a  b ", "scp": ["c", 1, "d"]]) == ["a", "b", "c", "d"])
    }

    @Test("wrongly typed scope claims and elements grant nothing")
    func badScopeClaims() throws {
        let rule = try AccessRule(path: "/x", scopes: ["read"])
        #expect(rule.missingScopes(in: ["scope": 1]) == ["read"])
        #expect(rule.missingScopes(in: ["scope": true]) == ["read"])
        #expect(rule.missingScopes(in: ["scp": ["x": "read"]]) == ["read"])
        #expect(rule.missingScopes(in: ["scp": [["read"]]]) == ["read"])
        // An array element is one scope, not a list.
        #expect(rule.missingScopes(in: ["scp": ["read write"]]) == ["read"])
    }

    @Test("no required scopes: nothing is missing")
    func noScopes() throws {
        #expect(try AccessRule(path: "/x").missingScopes(in: [:]).isEmpty)
        #expect(try AccessRule(path: "/x", scopes: []).missingScopes(in: [:]).isEmpty)
    }
}
