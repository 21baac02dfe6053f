import Foundation
import PortcullisCore
import Testing

/// A claim set (or any JSON value) from JSON text, via Foundation so the fixtures do not depend on the code
/// under test. Invalid JSON here is a mistake in the test itself, hence the trap.
private func claimPathFixture(_ json: String) -> JSONValue {
    let object = try! JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
    return claimPathFixtureValue(object)
}

private func claimPathFixtureValue(_ object: Any) -> JSONValue {
    switch object {
    case is NSNull:
        return .null
    case let string as String:
        return .string(string)
    case let number as NSNumber:
        // JSONSerialization gives NSNumber for booleans too, and `as? Bool` also accepts 0 and 1 on Linux;
        // only the Objective-C type code "c" (char) tells a boolean apart, on Darwin and Linux alike.
        if String(cString: number.objCType) == "c" { return .bool(number.boolValue) }
        return .number(JSONNumber(literal: number.stringValue))
    case let array as [Any]:
        return .array(array.map(claimPathFixtureValue))
    case let object as [String: Any]:
        return .object(object.mapValues(claimPathFixtureValue))
    default:
        Issue.record("unexpected JSONSerialization output \(type(of: object))")
        return .null
    }
}

@Suite("ClaimPath")
struct ClaimPathTests {
    // MARK: - Fixtures

    /// Auth0 puts custom claims under namespaced (URL) names.
    static let auth0 = claimPathFixture(
        """
        {"sub": "auth0|5f1c2a", "iat": 1700000000,
         "https://postgrest-demo.de/role": "webuser",
         "https://www.example.com/role": {"key": "editor"}}
        """)

    /// Keycloak lists realm roles under `realm_access` and client roles under `resource_access`.
    static let keycloak = claimPathFixture(
        """
        {"preferred_username": "jdoe",
         "realm_access": {"roles": ["offline_access", "admin"]},
         "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}}}
        """)

    static let nestedPostgREST = claimPathFixture(#"{"postgrest": {"roles": ["reader", "author"]}}"#)

    static let roleList = claimPathFixture(
        """
        {"role": "webuser", "preferred": "author",
         "roles": ["reader", "editor", "author", "admin", "superadmin"]}
        """)

    static let groups = claimPathFixture(
        """
        {"groups": [
            {"name": "ops", "level": 1, "admin": false},
            {"name": "dev", "level": 2},
            {"name": "sec", "level": 3, "admin": true, "members": ["a", "b"]}]}
        """)

    // "Nothing selected" is written `.none`, never `nil`: where `JSONValue` is `ExpressibleByNilLiteral`,
    // `value == nil` compares with `.null`.

    static func string(_ value: String) -> JSONValue { .string(value) }

    static func number(_ literal: String) -> JSONValue { .number(JSONNumber(literal: literal)) }

    static func compileError(_ source: String) -> ClaimPathError? {
        do {
            _ = try ClaimPath(source)
            return nil
        } catch {
            return error
        }
    }

    // MARK: - The fixture helper

    @Test func fixtureHelperTellsBooleansFromNumbers() {
        let value = claimPathFixture(#"[true, false, 1, 0, 1.5, -2, null, "s", {"k": [true]}]"#)
        let expected: JSONValue = .array([
            .bool(true), .bool(false), Self.number("1"), Self.number("0"), Self.number("1.5"), Self.number("-2"),
            .null, .string("s"), .object(["k": .array([.bool(true)])]),
        ])
        #expect(value == expected)
    }

    // MARK: - The documented examples

    struct Example: Sendable, CustomTestStringConvertible {
        var path: String
        var claims: JSONValue
        var first: JSONValue?
        var testDescription: String { path }
    }

    static let examples: [Example] = [
        // PostgREST's syntax.
        Example(path: ".role", claims: roleList, first: string("webuser")),
        Example(path: #"."https://postgrest-demo.de/role""#, claims: auth0, first: string("webuser")),
        Example(path: ".realm_access.roles[0]", claims: keycloak, first: string("offline_access")),
        Example(path: ".realm_access.roles[1]", claims: keycloak, first: string("admin")),
        Example(path: ".resource_access.account.roles[1]", claims: keycloak, first: string("view-profile")),
        Example(path: ".postgrest.roles[1]", claims: nestedPostgREST, first: string("author")),
        Example(path: #".roles[?(@ == "admin")]"#, claims: roleList, first: string("admin")),
        Example(path: #".roles[?(@ ^== "adm")]"#, claims: roleList, first: string("admin")),
        Example(path: #".roles[?(@ ==^ "min")]"#, claims: roleList, first: string("admin")),
        Example(path: #".roles[?(@ *== "dmi")]"#, claims: roleList, first: string("admin")),
        Example(path: #".roles[?(@ != "reader")]"#, claims: roleList, first: string("editor")),
        Example(path: #".realm_access.roles[?(@ == "admin")]"#, claims: keycloak, first: string("admin")),
        // JSONPath.
        Example(path: "$.role", claims: roleList, first: string("webuser")),
        Example(path: "$['https://www.example.com/role'].key", claims: auth0, first: string("editor")),
        Example(path: #"$["https://postgrest-demo.de/role"]"#, claims: auth0, first: string("webuser")),
        Example(path: "$.postgrest.roles[1]", claims: nestedPostgREST, first: string("author")),
        Example(path: "$.roles[?(@ == 'author')]", claims: roleList, first: string("author")),
        Example(path: "$.roles[?search(@, '^au')]", claims: roleList, first: string("author")),
        Example(path: "$.realm_access.roles[0]", claims: keycloak, first: string("offline_access")),
        Example(path: "$.roles[-1]", claims: roleList, first: string("superadmin")),
        Example(path: "$.roles[-5]", claims: roleList, first: string("reader")),
        Example(path: "$.realm_access.roles[?@ == 'admin']", claims: keycloak, first: string("admin")),
    ]

    @Test(arguments: examples)
    func documentedExample(_ example: Example) throws {
        let path = try ClaimPath(example.path)
        #expect(path.firstValue(in: example.claims) == example.first)
        #expect(path.values(in: example.claims).first == example.first)
        #expect(path.description == example.path)
    }

    // MARK: - PostgREST's syntax

    @Test func everyFilterOperatorSelectsEveryMatchInOrderAndTheFirstWins() throws {
        let cases: [(String, [String])] = [
            (#".roles[?(@ == "admin")]"#, ["admin"]),
            (#".roles[?(@ != "reader")]"#, ["editor", "author", "admin", "superadmin"]),
            (#".roles[?(@ ^== "adm")]"#, ["admin"]),
            (#".roles[?(@ ==^ "admin")]"#, ["admin", "superadmin"]),
            (#".roles[?(@ *== "dmi")]"#, ["admin", "superadmin"]),
            (#".roles[?(@ *== "")]"#, ["reader", "editor", "author", "admin", "superadmin"]),
            (#".roles[?(@ == "nobody")]"#, []),
        ]
        for (source, expected) in cases {
            let path = try ClaimPath(source)
            #expect(path.values(in: Self.roleList) == expected.map(Self.string), "\(source)")
            #expect(path.firstValue(in: Self.roleList) == expected.first.map(Self.string), "\(source)")
        }
    }

    @Test func filterLooksOnlyAtStringElements() throws {
        let claims = claimPathFixture(#"{"roles": [1, null, true, {"r": "admin"}, ["admin"], "admin"]}"#)
        // PostgREST skips non-strings even for `!=`; JSONPath compares every element.
        #expect(try ClaimPath(#".roles[?(@ != "x")]"#).values(in: claims) == [Self.string("admin")])
        #expect(try ClaimPath("$.roles[?@ != 'x']").values(in: claims).count == 6)
    }

    @Test func filterOperatorsNeedNoBlankSpaceAndMayHaveMore() throws {
        for source in [#".roles[?(@=="admin")]"#, #".roles[?(@==^"dmin")]"#, #".roles[?( @  ==  "admin" )]"#] {
            #expect(try ClaimPath(source).firstValue(in: Self.roleList) == Self.string("admin"), "\(source)")
        }
    }

    @Test func filterComparesUnicodeScalarsNotCharacters() throws {
        // "é" precomposed in the claim, decomposed in the filter: equal as Characters, different as scalars.
        let claims = claimPathFixture(#"{"roles": ["caf\u00e9"]}"#)
        #expect(try ClaimPath(".roles[?(@ == \"cafe\u{301}\")]").firstValue(in: claims) == .none)
        #expect(try ClaimPath(".roles[?(@ == \"caf\u{e9}\")]").firstValue(in: claims) == Self.string("caf\u{e9}"))
        #expect(try ClaimPath(".roles[?(@ ==^ \"\u{e9}\")]").firstValue(in: claims) == Self.string("caf\u{e9}"))
    }

    @Test func keysAndQuotedKeys() throws {
        let claims = claimPathFixture(
            #"{"a\"b": 1, "a\\b": 2, "$x@y_1": 3, "kebab-case": 4, "rôle": 5, "": 6, "with.dot": {"x": 7}}"#)
        let cases: [(String, String)] = [
            (#"."a\"b""#, "1"),
            (#"."a\\b""#, "2"),
            (#"."a\b""#, "2"),  // a backslash before anything else stays, as in PostgREST
            (".$x@y_1", "3"),
            (".kebab-case", "4"),
            (".rôle", "5"),
            (#"."""#, "6"),
            (#"."with.dot".x"#, "7"),
        ]
        for (source, literal) in cases {
            #expect(try ClaimPath(source).firstValue(in: claims) == Self.number(literal), "\(source)")
        }
    }

    @Test func indexesMayHaveLeadingZerosAndPathsMayStartWithOne() throws {
        #expect(try ClaimPath(".roles[004]").firstValue(in: Self.roleList) == Self.string("superadmin"))
        let array = claimPathFixture(#"[["a", "b"], "c"]"#)
        #expect(try ClaimPath("[0][1]").firstValue(in: array) == Self.string("b"))
        #expect(try ClaimPath(#"[?(@ == "c")]"#).firstValue(in: array) == Self.string("c"))
        #expect(try ClaimPath("[0]").firstValue(in: Self.roleList) == .none)
    }

    // MARK: - JSONPath

    @Test func filterExpressions() throws {
        let cases: [(String, [String])] = [
            ("$.groups[?@.level >= 2].name", ["dev", "sec"]),
            ("$.groups[?@.level > 1 && @.admin == true].name", ["sec"]),
            // `@.admin` tests existence, so a `false` member passes.
            ("$.groups[?@.level == 1 || @.admin].name", ["ops", "sec"]),
            ("$.groups[?!@.admin].name", ["dev"]),
            ("$.groups[?!(@.level == 2)].name", ["ops", "sec"]),
            ("$.groups[?(@.level < 2 || @.level > 2)].name", ["ops", "sec"]),
            ("$.groups[? ( @.level <= 2 ) && ( @.level != 1 ) ].name", ["dev"]),
            ("$.groups[?length(@.name) == 3].name", ["ops", "dev", "sec"]),
            ("$.groups[?count(@.members[*]) == 2].name", ["sec"]),
            ("$.groups[?count(@.*) > 2].name", ["ops", "sec"]),
            ("$.groups[?value(@.members[0]) == 'a'].name", ["sec"]),
            ("$.groups[?value(@.members[*]) == 'a'].name", []),
            ("$.groups[?@['name'] == \"dev\"].name", ["dev"]),
            ("$.groups[?@.level == 2.0].name", ["dev"]),
            ("$.groups[?@.level == 20e-1].name", ["dev"]),
            ("$.groups[?@.admin == false].name", ["ops"]),
            ("$.groups[?@.admin == null].name", []),
            // Nothing (no node) is not `null`.
            ("$.groups[?@.missing == null].name", []),
            ("$.groups[?@.members[5] == null].name", []),
            ("$.groups[?value(@.members[*]) == null].name", []),
            ("$.groups[?@.missing == @.alsoMissing].name", ["ops", "dev", "sec"]),
            ("$.groups[?@.missing != 1].name", ["ops", "dev", "sec"]),
            ("$.groups[?@.name < 'e'].name", ["dev"]),
            ("$.groups[?@.name >= 'ops'].name", ["ops", "sec"]),
            ("$.groups[?@.level < 'z'].name", []),
            ("$.groups[?@ == $.groups[1]].name", ["dev"]),
            ("$.groups[?@.members == $.groups[2].members].name", ["sec"]),
            ("$.groups[?@.members[?@ == 'b']].name", ["sec"]),
            ("$.groups[?match(@.name, 'd.v')].name", ["dev"]),
            ("$.groups[?match(@.name, 'e')].name", []),
            ("$.groups[?search(@.name, 'e')].name", ["dev", "sec"]),
            ("$.groups[?search(@.level, '1')].name", []),
            ("$.groups[?1 == 1].name", ["ops", "dev", "sec"]),
        ]
        for (source, expected) in cases {
            #expect(try ClaimPath(source).values(in: Self.groups) == expected.map(Self.string), "\(source)")
        }
    }

    @Test func filtersCanReferToTheWholeClaimSet() throws {
        let path = try ClaimPath("$.roles[?@ == $.preferred]")
        #expect(path.firstValue(in: Self.roleList) == Self.string("author"))
    }

    @Test func regularExpressionsMatchTheWholeStringOrSearchIt() throws {
        let cases: [(String, [String])] = [
            ("$.roles[?match(@, 'adm')]", []),
            ("$.roles[?match(@, '.*admin')]", ["admin", "superadmin"]),
            ("$.roles[?match(@, \"(super)?admin\")]", ["admin", "superadmin"]),
            ("$.roles[?search(@, 'dmi')]", ["admin", "superadmin"]),
            ("$.roles[?search(@, '^a')]", ["author", "admin"]),
            ("$.roles[?search(@, 'r$')]", ["reader", "editor", "author"]),
            ("$.roles[?!search(@, 'a')]", ["editor"]),
        ]
        for (source, expected) in cases {
            #expect(try ClaimPath(source).values(in: Self.roleList) == expected.map(Self.string), "\(source)")
        }
    }

    @Test func wildcardsAndSeveralSelectors() throws {
        let claims = claimPathFixture(#"{"b": 1, "a": 2, "c": 3, "list": ["x", "y", "z"]}"#)
        let numbers: (String) throws -> [JSONValue] = { try ClaimPath($0).values(in: claims) }
        // Object members come in name order.
        #expect(try numbers("$[?@ > 1]") == [Self.number("2"), Self.number("3")])
        #expect(try numbers("$['a', 'c']") == [Self.number("2"), Self.number("3")])
        #expect(try numbers("$.list[0, -1, 0]") == ["x", "z", "x"].map(Self.string))
        #expect(try numbers("$.list[*]") == ["x", "y", "z"].map(Self.string))
        #expect(try numbers("$.list.*") == ["x", "y", "z"].map(Self.string))
        #expect(try numbers("$.*").count == 4)
        #expect(try numbers("$.*").first == Self.number("2"))
        #expect(try numbers("$[*][*]") == ["x", "y", "z"].map(Self.string))
        #expect(try numbers("$") == [claims])
        #expect(try numbers("$ .list [ 1 ]") == [Self.string("y")])
    }

    @Test func stringLiteralEscapes() throws {
        let claims = claimPathFixture(#"{"a\"b": 1, "it's": 2, "été": 3, "😀": 4, "t\tab/\\": 5, "ünï": 6}"#)
        let cases: [(String, String)] = [
            (#"$["a\"b"]"#, "1"),
            (#"$['a"b']"#, "1"),
            (#"$['it\'s']"#, "2"),
            (#"$["it's"]"#, "2"),
            (#"$['\u00e9t\u00E9']"#, "3"),
            (#"$['\uD83D\uDE00']"#, "4"),
            (#"$['t\tab\/\\']"#, "5"),
            ("$.ünï", "6"),
            ("$.été", "3"),
        ]
        for (source, literal) in cases {
            #expect(try ClaimPath(source).firstValue(in: claims) == Self.number(literal), "\(source)")
        }
    }

    @Test func largestIndexesCompileAndSelectNothing() throws {
        for source in ["$.roles[9007199254740991]", "$.roles[-9007199254740991]", ".roles[9007199254740991]"] {
            #expect(try ClaimPath(source).firstValue(in: Self.roleList) == .none, "\(source)")
        }
    }

    // MARK: - Nothing selected

    @Test func missingMembersWrongTypesAndOutOfRangeIndexesSelectNothing() throws {
        let claims = claimPathFixture(
            #"{"role": "webuser", "count": 3, "roles": "admin", "map": {"0": "x"}, "list": ["a"], "nil": null}"#)
        let sources = [
            ".missing", "$.missing", ".role.name", "$.role.name", ".role[0]", "$.role[0]", ".roles[0]",
            ".map[0]", "$.map[0]", ".list[1]", "$.list[1]", "$.list[-2]", ".list.a", "$.list.a", ".nil.a",
            ".count[0]", #".roles[?(@ == "admin")]"#, #".map[?(@ == "x")]"#, "$.roles[?@ == 'admin']",
            "$.role[*]", "$.count.*", ".realm_access.roles[0]",
        ]
        for source in sources {
            let path = try ClaimPath(source)
            #expect(path.firstValue(in: claims) == .none, "\(source)")
            #expect(path.values(in: claims).isEmpty, "\(source)")
        }
    }

    @Test func everyPathOnEveryKindOfValueNeverTraps() throws {
        let moreSources = [
            "$", "$.*", "$[*][*]", "$[?@]", "$[?@.a == @.b]", "$[?length(@) > 0]", "$[?count(@.*) == 0]",
            "$[?value(@[0]) == 1]", "$[?match(@, 'a')]", "$[-1]", "$[0]", ".a[0]", "[0]", #"[?(@ == "a")]"#,
        ]
        let values: [JSONValue] = [
            .null, .bool(true), .bool(false), Self.number("0"), Self.number("-1.5e300"), .string(""), .string("a"),
            .array([]), .object([:]), .array([.null, .array([]), .object([:])]), Self.auth0, Self.keycloak,
            Self.roleList, Self.groups,
            claimPathFixture(#"{"roles": {"a": "admin"}, "role": ["webuser"], "realm_access": ["roles"]}"#),
        ]
        for source in Self.examples.map(\.path) + moreSources {
            let path = try ClaimPath(source)
            for value in values {
                #expect(path.firstValue(in: value) == path.values(in: value).first, "\(source)")
            }
        }
    }

    // MARK: - Compile errors

    struct BadPath: Sendable, CustomTestStringConvertible {
        var source: String
        var position: Int
        var message: String
        var testDescription: String { source.isEmpty ? "(empty)" : source }
    }

    static let badPaths: [BadPath] = [
        BadPath(source: "", position: 0, message: "empty claim path"),
        BadPath(
            source: "role", position: 0,
            message: "a claim path starts with '$' (JSONPath) or '.' (PostgREST syntax)"),
        // PostgREST's syntax.
        BadPath(source: ".roles[", position: 7, message: "expected an array index or a filter"),
        BadPath(source: ".role[abc]", position: 6, message: "expected an array index or a filter"),
        BadPath(source: #"."abc"#, position: 1, message: "unterminated quoted key"),
        BadPath(
            source: #".roles[?(@ =~ "a")]"#, position: 11,
            message: "unknown filter operator; expected ==, !=, ^==, ==^ or *=="),
        BadPath(source: ".roles[99999999999999999999]", position: 7, message: "array index out of range"),
        BadPath(source: ".roles[9007199254740992]", position: 7, message: "array index out of range"),
        BadPath(
            source: ".roles[-1]", position: 7,
            message: "negative array indexes need the '$' JSONPath syntax, e.g. $.roles[-1]"),
        BadPath(
            source: #".roles[?(@ == "a")].x"#, position: 19, message: "a filter must be the last step of the path"),
        BadPath(source: ".", position: 1, message: "expected a key or a quoted key after '.'"),
        BadPath(source: ".a.", position: 3, message: "expected a key or a quoted key after '.'"),
        BadPath(source: ".a b", position: 2, message: "expected '.' or '[', found ' '"),
        BadPath(source: ".roles[0", position: 8, message: "expected ']'"),
        BadPath(source: #".roles[?@ == "a"]"#, position: 8, message: "expected '(' after '[?'"),
        BadPath(source: #".roles[?(x == "a")]"#, position: 9, message: "expected '@'"),
        BadPath(source: ".roles[?(@ == admin)]", position: 14, message: "expected a double-quoted string"),
        BadPath(source: #".roles[?(@ == "a"]"#, position: 17, message: "expected ')'"),
        BadPath(source: #".roles[?(@ == "a")"#, position: 18, message: "expected ']'"),
        BadPath(source: #".roles[?(@ == "a)]"#, position: 14, message: "unterminated quoted string"),
        BadPath(source: #"."a\"#, position: 1, message: "unterminated quoted key"),
        // JSONPath.
        BadPath(source: "$.roles[?(@ == 'a')", position: 19, message: "expected ']'"),
        BadPath(source: "$.roles[?(@ == 'a']", position: 18, message: "expected ')'"),
        BadPath(source: "$.a.", position: 4, message: "expected a member name or '*' after '.'"),
        BadPath(source: "$.1a", position: 2, message: "expected a member name or '*' after '.'"),
        BadPath(source: "$.a b", position: 4, message: "unexpected 'b'"),
        BadPath(source: "$.a ", position: 3, message: "unexpected blank space at the end"),
        BadPath(source: "$a", position: 1, message: "unexpected 'a'"),
        BadPath(source: "$..role", position: 1, message: "descendant segments ('..') are not supported"),
        BadPath(source: "$.roles[1:2]", position: 9, message: "array slices are not supported"),
        BadPath(source: "$.roles[:2]", position: 8, message: "array slices are not supported"),
        BadPath(source: "$.roles[99999999999999999999]", position: 8, message: "array index out of range"),
        BadPath(source: "$.roles[-99999999999999999999]", position: 8, message: "array index out of range"),
        BadPath(source: "$[01]", position: 2, message: "an index has no leading zeros"),
        BadPath(source: "$[-0]", position: 2, message: "-0 is not a valid index"),
        BadPath(source: "$[-]", position: 3, message: "expected digits"),
        BadPath(source: "$[]", position: 2, message: "expected a quoted name, an index, '*' or a filter"),
        BadPath(source: "$['a'", position: 5, message: "expected ']'"),
        BadPath(source: "$['a' 'b']", position: 6, message: "expected ']'"),
        BadPath(source: "$['abc", position: 2, message: "unterminated string literal"),
        BadPath(source: #"$['a\"#, position: 2, message: "unterminated string literal"),
        BadPath(source: #"$['a\q']"#, position: 4, message: #"invalid escape '\q'"#),
        BadPath(source: #"$['a\"']"#, position: 4, message: #"invalid escape '\"'"#),
        BadPath(source: #"$["\uD800"]"#, position: 3, message: "unpaired surrogate"),
        BadPath(source: #"$["\uDC00"]"#, position: 3, message: "unpaired surrogate"),
        BadPath(source: #"$["a\u00"]"#, position: 4, message: #"expected four hex digits after \u"#),
        BadPath(source: "$['a\u{1}']", position: 4, message: "a control character in a string literal must be escaped"),
        BadPath(source: "$[?@ == 'a", position: 8, message: "unterminated string literal"),
        BadPath(source: "$[?@ ==]", position: 7, message: "expected '@', '$', a literal or a function, found ']'"),
        BadPath(source: "$[?@ == tru]", position: 8, message: "unexpected 'tru'"),
        BadPath(source: "$[?@ == 01]", position: 8, message: "a number has no leading zeros"),
        BadPath(source: "$[?@ == 1.]", position: 10, message: "expected a digit"),
        BadPath(source: "$[?@ == 1e]", position: 10, message: "expected a digit"),
        BadPath(
            source: "$[?@.a == 1 && ]", position: 15, message: "expected '@', '$', a literal or a function, found ']'"),
        BadPath(
            source: "$[?length(@)]", position: 3,
            message: "length() gives a value, not a test; compare it with something"),
        BadPath(source: "$[?match(@, 'a') == true]", position: 3, message: "match() gives a test result, not a value"),
        BadPath(
            source: "$[?@.* == 1]", position: 3,
            message: "only a singular query (names and indexes only) gives a value here"),
        BadPath(
            source: "$[?1 == @[?@]]", position: 8,
            message: "only a singular query (names and indexes only) gives a value here"),
        BadPath(source: "$[?foo(@)]", position: 3, message: "unknown function 'foo'"),
        BadPath(source: "$[?!@.a == 1]", position: 3, message: "'!' cannot negate a comparison; write !(a == b)"),
        BadPath(source: "$[?'a']", position: 3, message: "a literal is not a test; compare it with something"),
        BadPath(source: "$[?match(@)]", position: 10, message: "match() takes 2 arguments"),
        BadPath(source: "$[?length(@, 1) > 1]", position: 11, message: "length() takes 1 argument"),
        BadPath(source: "$[?count('a') > 1]", position: 9, message: "count() takes a query such as @.roles[*]"),
        BadPath(
            source: "$.a[?match(@, @.p)]", position: 14, message: "the pattern of match() must be a string literal"),
        BadPath(
            source: "$[?" + String(repeating: "(", count: 40) + "@" + String(repeating: ")", count: 40) + "]",
            position: 34, message: "filter is nested too deeply"),
        // Positions count Unicode scalars: the decomposed "é" is two.
        BadPath(source: "$.e\u{301} x", position: 5, message: "unexpected 'x'"),
    ]

    @Test(arguments: badPaths)
    func compileErrorSaysWhatAndWhere(_ bad: BadPath) throws {
        let error = try #require(Self.compileError(bad.source))
        #expect(error.position == bad.position)
        #expect(error.message == bad.message)
        #expect(error.source == bad.source)
    }

    @Test func invalidRegularExpressionIsACompileErrorAtThePattern() throws {
        for (source, position) in [("$[?search(@, '(')]", 13), ("$.roles[?match(@, \"a{2,1}\")]", 18)] {
            let error = try #require(Self.compileError(source))
            #expect(error.position == position, "\(source)")
            #expect(error.message.hasPrefix("invalid regular expression"), "\(source)")
        }
    }

    @Test func errorDescriptionQuotesThePathAndThePosition() throws {
        let error = try #require(Self.compileError(".roles["))
        #expect(
            error.description == #"invalid claim path ".roles[": expected an array index or a filter at position 7"#)
    }

    // MARK: - Identity

    @Test func pathsAreEqualWhenTheirSourceIs() throws {
        #expect(try ClaimPath(".role") == ClaimPath(".role"))
        #expect(try ClaimPath(".role") != ClaimPath("$.role"))
        #expect(try Set([ClaimPath(".role"), ClaimPath(".role"), ClaimPath("$.role")]).count == 2)
        #expect(try ClaimPath("$.roles[?search(@, 'a')]").description == "$.roles[?search(@, 'a')]")
    }
}
