import Testing

@testable import PortcullisCore

@Suite("Policy: text helpers")
struct PolicyTextTests {
    @Test("ASCII letters compare in any case; nothing else is folded")
    func equalsIgnoringASCIICase() {
        #expect(PolicyText.equalsIgnoringASCIICase("Content-Length", "content-length"))
        #expect(PolicyText.equalsIgnoringASCIICase("BEARER", "bearer"))
        #expect(PolicyText.equalsIgnoringASCIICase("", ""))
        #expect(!PolicyText.equalsIgnoringASCIICase("Bearer", "Bearer "))
        #expect(!PolicyText.equalsIgnoringASCIICase("Bearer", "Beare"))
        #expect(!PolicyText.equalsIgnoringASCIICase("a", ""))
        // Unicode case folding would match these; HTTP syntax must not.
        #expect(!PolicyText.equalsIgnoringASCIICase("ſet-cookie", "set-cookie"))
        #expect(!PolicyText.equalsIgnoringASCIICase("\u{212A}eep-alive", "keep-alive"))
        // Only letters: `@` (0x40) and `` ` `` (0x60) are 0x20 apart like a letter pair, and are not one.
        #expect(!PolicyText.equalsIgnoringASCIICase("@", "`"))
        #expect(!PolicyText.equalsIgnoringASCIICase("[", "{"))
    }

    @Test("the String, generic and buffer forms agree")
    func formsAgree() {
        let pairs: [(String, String)] = [
            ("Connection", "connection"), ("Upgrade", "upgrade "), ("TE", "te"), ("Trailer", "Trailers"),
            ("é", "É"), ("x-Ä", "X-ä"),
        ]
        for (left, right) in pairs {
            let expected = PolicyText.equalsIgnoringASCIICase(left, right)
            // Substrings take the generic form.
            #expect(PolicyText.equalsIgnoringASCIICase(left[...], right[...]) == expected)
            #expect(PolicyText.equalsIgnoringASCIICase(left[...], right) == expected)
            let viaBuffers = Array(left.utf8).withUnsafeBufferPointer { l in
                Array(right.utf8).withUnsafeBufferPointer { r in PolicyText.equalsIgnoringASCIICase(l, r) }
            }
            #expect(viaBuffers == expected)
        }
        #expect(PolicyText.equalsIgnoringASCIICase("Connection", "connection"))
        #expect(!PolicyText.equalsIgnoringASCIICase("é", "É"))
    }
}
