import PortcullisCore
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    let parser = JSONParser(maxDepth: 4)

    @Test("parses every JSON type and keeps number literals")
    func parsesTypes() throws {
        let value = try parser.parse(
            #"{"s":"a\"b\u00e9\ud83d\ude00","n":12345678901234567890,"f":-1.5e3,"t":true,"z":null,"a":[1,{}]}"#)
        #expect(value["s"] == .string("a\"bé😀"))
        #expect(value["n"] == .number(JSONNumber(literal: "12345678901234567890")))
        #expect(value["f"].map { if case .number(let n) = $0 { n.doubleValue } else { 0 } } == -1500)
        #expect(value["t"] == .bool(true))
        #expect(value["z"] == .null)
        #expect(value["a"] == .array([1, .object([:])]))
    }

    @Test(
        "refuses a duplicate member name, also when spelled with escapes",
        arguments: [
            #"{"role":"user","role":"admin"}"#, #"{"role":"user","r\u006fle":"admin"}"#,
            #"{"a":{"x":1,"x":2}}"#,
        ])
    func duplicateMembers(_ text: String) {
        #expect {
            try parser.parse(text)
        } throws: { error in
            if case .duplicateMember = (error as? JSONParseError)?.kind { return true }
            return false
        }
    }

    @Test("bounds nesting")
    func nesting() throws {
        _ = try parser.parse("[[[[1]]]]")
        #expect(throws: JSONParseError(kind: .tooDeep, offset: 4)) { try parser.parse("[[[[[1]]]]]") }
        // A hostile document deeper than any stack is refused, not crashed on.
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser().parse(deep) }
    }

    @Test(
        "refuses what RFC 8259 does not allow",
        arguments: [
            "", " ", "{", "{\"a\"}", "{\"a\":1,}", "[1,]", "01", "1.", "-", "1e", "+1", ".5", "NaN", "tru",
            "\"\u{01}\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "{} x", "'a'",
            "{\"a\" 1}", "[1 2]", "\"abc",
        ])
    func refusesInvalid(_ text: String) {
        #expect(throws: JSONParseError.self) { try parser.parse(text) }
    }

    @Test(
        "refuses invalid UTF-8",
        arguments: [
            [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
            [0x22, 0xE2, 0x82, 0x22], [0x22, 0xFF, 0x22],
        ] as [[UInt8]])
    func invalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try parser.parse(bytes) }
    }

    @Test("visits members in order and refuses duplicates, also past the 16 names kept on the stack")
    func forEachMember() throws {
        func visit(_ text: String) throws -> [String]? {
            var names: [String] = []
            let isObject = try Array(text.utf8).withUnsafeBytes { bytes in
                try parser.forEachMember(of: bytes) { name, _ in names.append(name) }
            }
            return isObject ? names : nil
        }
        #expect(try visit(#"{"b":1,"a":{"x":[2]}}"#) == ["b", "a"])
        #expect(try visit("[1]") == nil)
        #expect(try visit("{}") == [])
        let many = (0..<20).map { #""m\#($0)":\#($0)"# }
        #expect(try visit("{" + many.joined(separator: ",") + "}")?.count == 20)
        for duplicate in ["m3", "m18"] {
            #expect(throws: JSONParseError.self) {
                try visit("{" + (many + [#""\#(duplicate)":0"#]).joined(separator: ",") + "}")
            }
        }
        #expect(throws: JSONParseError.self) { try visit(#"{"a":1} {"#) }
        #expect(throws: JSONParseError.self) { try visit(#"{"a":1,"a":2}"#) }
    }

    @Test("writes compact, ASCII-only JSON with sorted members")
    func compactJSON() throws {
        let value = try parser.parse(#"{ "b" : [ 1 , "é\n" ], "a" : { } }"#)
        #expect(value.compactJSON == #"{"a":{},"b":[1,"\u00e9\n"]}"#)
        #expect(try parser.parse(value.compactJSON) == value)
    }
}

@Suite("base64url")
struct Base64URLTests {
    @Test("round-trips every length")
    func roundTrip() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
    }

    @Test(
        "is strict: no padding, whitespace, foreign characters or non-zero unused bits",
        arguments: ["Zg==", "Zm9v=", "Zm 9v", "Zm9v\n", "Zm+v", "Zm/v", "Z", "Zh", "Zm9", "Zm9vYg=", "Zm.v"])
    func strict(_ text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test("accepts the canonical forms")
    func canonical() {
        #expect(Base64URL.decode("Zg") == Array("f".utf8))
        #expect(Base64URL.decode("Zm8") == Array("fo".utf8))
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
    }
}

@Suite("JSON numbers")
struct JSONNumberTests {
    @Test(
        "doubleValue agrees with the full conversion, on and off the integer fast path",
        arguments: [
            "0", "7", "1700000000", "999999999999999", "1000000000000000", "12345678901234567890", "-1", "1.5",
            "1e3", "-0", "0.1", "253402300799",
        ])
    func doubleValue(_ literal: String) {
        #expect(JSONNumber(literal: literal).doubleValue == Double(literal))
    }
}
