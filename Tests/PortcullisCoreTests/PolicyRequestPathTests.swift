import PortcullisTestSupport
import Testing

@testable import PortcullisCore

@Suite("Policy: request path normalization")
struct PolicyRequestPathTests {
    static let normalizations: [(raw: String, normalized: String)] = [
        ("/", "/"),
        ("/admin", "/admin"),
        // Dot-segments, plain and percent-encoded in either case ('.' is unreserved, so %2e is '.').
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2E/admin", "/admin"),
        ("/public/.%2e/admin", "/admin"),
        ("/public/%2e./admin", "/admin"),
        ("/a/./b/", "/a/b/"),
        ("/a/%2e/b", "/a/b"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/..", "/"),
        ("/a/b/../../c", "/c"),
        ("/./a", "/a"),
        // Not dot-segments.
        ("/a/.../b", "/a/.../b"),
        ("/a/..b/c", "/a/..b/c"),
        ("/a/b../c", "/a/b../c"),
        ("/a/.;/b", "/a/.;/b"),
        // Repeated slashes fold, before dot-segments are removed.
        ("/a//b///c", "/a/b/c"),
        ("//", "/"),
        ("///a//", "/a/"),
        ("/a//../b", "/b"),
        // Encoded separators are never decoded; their hex is uppercased.
        ("/a/%2F/b", "/a/%2F/b"),
        ("/a/%2f/b", "/a/%2F/b"),
        ("/a%5cb", "/a%5Cb"),
        ("/files/a%2Fb.txt", "/files/a%2Fb.txt"),
        // Unreserved escapes decode, the others keep their encoding in uppercase.
        ("/%7Euser", "/~user"),
        ("/%7euser", "/~user"),
        ("/%41%62%2D%5F%2E%7E%30", "/Ab-_.~0"),
        ("/a%3ab", "/a%3Ab"),
        ("/a%40b", "/a%40b"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/%252e%252e/x", "/%252e%252e/x"),
        // Raw characters that may appear in a path stay; the others are encoded, non-ASCII as UTF-8.
        ("/!$&'()*+,;=:@-._~", "/!$&'()*+,;=:@-._~"),
        ("/café", "/caf%C3%A9"),
        ("/a b", "/a%20b"),
        ("/\"<>[]^`{|}", "/%22%3C%3E%5B%5D%5E%60%7B%7C%7D"),
        ("/%E0%A0%80/%F0%90%80%80", "/%E0%A0%80/%F0%90%80%80"),
    ]

    @Test("normalizes", arguments: normalizations)
    func normalizes(raw: String, normalized: String) throws {
        let path = try RequestPath(raw)
        #expect(path.normalized == normalized)
        #expect(path.description == normalized)
        // Normalizing is idempotent: the result is already in normal form.
        #expect(try RequestPath(normalized).normalized == normalized)
    }

    @Test("equivalent spellings normalize to the same path")
    func equivalentSpellings() throws {
        let spellings = ["/~user/x", "/%7Euser/x", "/%7euser/./x", "//~user//x", "/other/../%7Euser/x/"]
        let paths = try spellings.map { try RequestPath($0).normalized }
        #expect(Set(paths.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }) == ["/~user/x"])
        #expect(try RequestPath("/café") == RequestPath("/caf%C3%A9"))
        #expect(try RequestPath("/café") == RequestPath("/caf%c3%a9"))
    }

    @Test("accepts a Substring")
    func substring() throws {
        let target = "/public/%2e%2e/admin?x=1"
        let (path, _) = RequestPath.splitTarget(target[...])
        #expect(try RequestPath(path).normalized == "/admin")
    }

    static let refusals: [(raw: String, reason: RequestPathRefusal.Reason)] = [
        ("", .notOriginForm),
        ("admin", .notOriginForm),
        ("*", .notOriginForm),
        ("http://example.com/a", .notOriginForm),
        ("%2Fadmin", .notOriginForm),
        ("/%zz", .invalidPercentEncoding),
        ("/%4", .invalidPercentEncoding),
        ("/a%2", .invalidPercentEncoding),
        ("/%", .invalidPercentEncoding),
        ("/%%41", .invalidPercentEncoding),
        ("/%g0", .invalidPercentEncoding),
        ("/a%00b", .controlCharacter),
        ("/a%00", .controlCharacter),
        ("/a%0Ab", .controlCharacter),
        ("/a%0d%0aSet-Cookie:x", .controlCharacter),
        ("/%1f", .controlCharacter),
        ("/%7F", .controlCharacter),
        ("/a\u{0}b", .controlCharacter),
        ("/a\nb", .controlCharacter),
        ("/a\tb", .controlCharacter),
        ("/a\u{7F}", .controlCharacter),
        ("/a\\b", .backslash),
        ("/public\\..\\admin", .backslash),
        ("/a#b", .invalidCharacter),
        ("/a?b", .invalidCharacter),
        ("/..", .aboveRoot),
        ("/../x", .aboveRoot),
        ("/a/../../x", .aboveRoot),
        ("/%2e%2e/x", .aboveRoot),
        ("/./../x", .aboveRoot),
        ("//../x", .aboveRoot),
        ("/public/..%2Fadmin", .ambiguousDotSegment),
        ("/public/%2e%2e%2fadmin", .ambiguousDotSegment),
        ("/public/..%5Cadmin", .ambiguousDotSegment),
        ("/public/x%2F..%2F..%2Fadmin", .ambiguousDotSegment),
        ("/a/%2F..", .ambiguousDotSegment),
        ("/public/..;/admin", .ambiguousDotSegment),
        ("/public/..;jsessionid=1/admin", .ambiguousDotSegment),
        ("/public/%2e%2e;/admin", .ambiguousDotSegment),
        ("/%C0%AE%C0%AE/admin", .overlongEncoding),
        ("/a%c0%afb", .overlongEncoding),
        ("/%C1%9C", .overlongEncoding),
        ("/%E0%80%AE", .overlongEncoding),
        ("/%F0%80%80%AE", .overlongEncoding),
    ]

    @Test("refuses", arguments: refusals)
    func refuses(raw: String, reason: RequestPathRefusal.Reason) {
        #expect {
            try RequestPath(raw)
        } throws: { error in
            (error as? RequestPathRefusal)?.reason == reason
        }
    }

    @Test("names the encoded NUL")
    func encodedNUL() {
        #expect(throws: RequestPathRefusal(.controlCharacter, "The request path has an encoded NUL")) {
            try RequestPath("/a%00b")
        }
        #expect(throws: RequestPathRefusal(.aboveRoot, "The request path climbs above the root")) {
            try RequestPath("/../etc/passwd")
        }
    }

    @Test("refusal messages never repeat the path")
    func messagesDoNotEchoThePath() {
        let attacks = ["/../secret", "/secret%00", "/secret\\x", "/secret/..%2Fx", "/secret%zz", "secret"]
        for attack in attacks {
            do {
                _ = try RequestPath(attack)
                Issue.record("\(attack) was accepted")
            } catch {
                #expect(!error.message.contains("secret"))
                #expect(error.description.hasPrefix(error.reason.rawValue + ": "))
            }
        }
    }

    @Test("splits a request-target at its first '?'")
    func splitTarget() {
        let cases: [(target: String, path: String, query: String?)] = [
            ("/a?b=c", "/a", "b=c"),
            ("/a", "/a", nil),
            ("/a?", "/a", ""),
            ("/a?b?c", "/a", "b?c"),
            ("/?x", "/", "x"),
            // Bytes, not Characters: a combining mark after '?' must not hide it.
            ("/a?\u{301}b", "/a", "\u{301}b"),
        ]
        for (target, path, query) in cases {
            let split = RequestPath.splitTarget(target[...])
            #expect(split.path == path[...], "\(target)")
            #expect(split.query.map(String.init) == query, "\(target)")
        }
    }

    @Test("the shortcut for paths that are normal already gives what the normalizer gives, on generated paths")
    func alreadyNormalShortcutAgreesWithNormalizer() {
        // Pieces that keep a path normal and pieces that do not, so both sides of the shortcut are reached.
        let pieces = [
            "/", "/", "/", "a", "Z", "9", "-", "_", "~", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", ":",
            "@", ".", "..", "%2e", "%2F", "%41", "%", " ", "é", "\\", "#", "\u{01}",
        ]
        var generator = SplitMix64(seed: 0x5EED_0F_9A7B)
        var shortcutTaken = 0
        for _ in 0..<20_000 {
            var raw = Int.random(in: 0..<20, using: &generator) == 0 ? "" : "/"
            for _ in 0..<Int.random(in: 0...10, using: &generator) {
                raw += pieces.randomElement(using: &generator)!
            }
            let quick = Result { () throws(RequestPathRefusal) in try RequestPath(raw[...]).normalized }
            let normalized = Result { () throws(RequestPathRefusal) in try RequestPath(normalizing: raw[...]).normalized
            }
            #expect(quick == normalized, "\(raw.debugDescription)")
            if PathNormalizer.isAlreadyNormal(raw[...].utf8) {
                shortcutTaken += 1
                #expect(quick == .success(raw), "\(raw.debugDescription)")
            }
        }
        // Both sides were exercised.
        #expect(shortcutTaken > 2_000 && shortcutTaken < 18_000, "\(shortcutTaken)")
    }
}
