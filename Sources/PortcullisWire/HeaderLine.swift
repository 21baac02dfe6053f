/// One `name: value` line of a head or trailer section, checked (RFC 9110 §5.1, §5.5; RFC 9112 §5): the name
/// a token right before the colon, the value field characters only, the line ended by CRLF. No obs-fold, no
/// bare CR or LF, no space before the colon.
struct HeaderLine {
    let start: Int
    let name: Range<Int>
    /// Without the optional whitespace around it.
    let value: Range<Int>
    /// Just past the line's LF.
    let end: Int

    /// The line starting at `start`, or nil when it is not a valid one.
    init?(in bytes: UnsafeRawBufferPointer, at start: Int) {
        var index = start
        while index < bytes.count, Self.isTokenCharacter(bytes[index]) { index += 1 }
        guard index > start, index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
        name = start..<index
        index += 1
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") {
            index += 1
        }
        let valueStart = index
        // Eight bytes at a time while none is a control character or DEL (a token's value is hundreds of bytes);
        // the CR that ends the line is one, so the byte loop below finds it.
        while index + 8 <= bytes.count,
            !SWAR.hasByteBelowSpaceOrDelete(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        {
            index += 8
        }
        while index < bytes.count, bytes[index] != UInt8(ascii: "\r") {
            guard Self.isFieldCharacter(bytes[index]) else { return nil }
            index += 1
        }
        guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") else { return nil }
        var valueEnd = index
        while valueEnd > valueStart,
            bytes[valueEnd - 1] == UInt8(ascii: " ") || bytes[valueEnd - 1] == UInt8(ascii: "\t")
        {
            valueEnd -= 1
        }
        self.start = start
        value = valueStart..<valueEnd
        end = index + 2
    }

    /// The header names the relay acts on.
    enum KnownName {
        case contentLength
        case transferEncoding
        case connection
        /// `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Upgrade`, `Proxy-Authorization`.
        case otherHopByHop
    }

    func knownName(in bytes: UnsafeRawBufferPointer) -> KnownName? {
        Self.knownName(bytes, name)
    }

    static func knownName(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> KnownName? {
        // By length first: most names are rejected without comparing a byte.
        switch name.count {
        case 2: equalsIgnoringCase(bytes, name, "te") ? .otherHopByHop : nil
        case 7:
            equalsIgnoringCase(bytes, name, "trailer") || equalsIgnoringCase(bytes, name, "upgrade")
                ? .otherHopByHop : nil
        case 10:
            if equalsIgnoringCase(bytes, name, "connection") {
                .connection
            } else {
                equalsIgnoringCase(bytes, name, "keep-alive") ? .otherHopByHop : nil
            }
        case 14: equalsIgnoringCase(bytes, name, "content-length") ? .contentLength : nil
        case 16: equalsIgnoringCase(bytes, name, "proxy-connection") ? .otherHopByHop : nil
        case 17: equalsIgnoringCase(bytes, name, "transfer-encoding") ? .transferEncoding : nil
        case 19: equalsIgnoringCase(bytes, name, "proxy-authorization") ? .otherHopByHop : nil
        default: nil
        }
    }

    func isSetCookie(in bytes: UnsafeRawBufferPointer) -> Bool {
        Self.equalsIgnoringCase(bytes, name, "set-cookie")
    }

    /// The value as a decimal length: digits only, at most 18 of them.
    func decimalValue(in bytes: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var result = 0
        for index in value {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            result = result * 10 + Int(digit)
        }
        return result
    }

    func value(in bytes: UnsafeRawBufferPointer, equalsIgnoringCase lowercased: StaticString) -> Bool {
        Self.equalsIgnoringCase(bytes, value, lowercased)
    }

    /// Calls `body` with the range of each non-empty element of the comma-separated value, trimmed.
    func forEachListElement(in bytes: UnsafeRawBufferPointer, _ body: (Range<Int>) -> Void) {
        var elementStart = value.lowerBound
        for index in value.lowerBound...value.upperBound
        where index == value.upperBound || bytes[index] == UInt8(ascii: ",") {
            var lower = elementStart
            var upper = index
            while lower < upper, bytes[lower] == UInt8(ascii: " ") || bytes[lower] == UInt8(ascii: "\t") {
                lower += 1
            }
            while upper > lower, bytes[upper - 1] == UInt8(ascii: " ") || bytes[upper - 1] == UInt8(ascii: "\t") {
                upper -= 1
            }
            if lower < upper { body(lower..<upper) }
            elementStart = index + 1
        }
    }

    /// Whether the bytes in `range` spell `lowercased` in any letter case. `lowercased` holds only lowercase
    /// letters and `-`; OR-ing 0x20 maps an uppercase letter to its lowercase and leaves `-` as it is, and no
    /// other byte that a token or list element can hold maps onto either.
    static func equalsIgnoringCase(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: StaticString
    )
        -> Bool
    {
        guard range.count == lowercased.utf8CodeUnitCount else { return false }
        let expected = lowercased.utf8Start
        var offset = 0
        for index in range {
            guard bytes[index] | 0x20 == expected[offset] else { return false }
            offset += 1
        }
        return true
    }

    /// Whether two ranges of `bytes` hold the same text in any ASCII letter case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lhs: Range<Int>, _ rhs: Range<Int>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for offset in 0..<lhs.count {
            let left = bytes[lhs.lowerBound + offset]
            let right = bytes[rhs.lowerBound + offset]
            guard left == right || Self.lowercased(left) == Self.lowercased(right) else { return false }
        }
        return true
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// field-vchar, SP or HTAB (RFC 9110 §5.5), obs-text included: no control character, CR and LF among them.
    static func isFieldCharacter(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t")
    }
}

/// Tests on eight bytes at once (SIMD within a register), for the loops that look at every byte of a head.
/// Each may answer true for a word without such a byte (a borrow from a lower byte that matched), never false
/// for a word with one: callers use a true only to fall back to looking byte by byte.
enum SWAR {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether some byte is below 0x20 or is 0x7F.
    static func hasByteBelowSpaceOrDelete(_ word: UInt64) -> Bool {
        let belowSpace = (word &- ones &* 0x20) & ~word & highBits
        return belowSpace != 0 || hasZeroByte(word ^ (ones &* 0x7F))
    }

    /// Whether some byte is `byte`.
    static func hasByte(_ word: UInt64, _ byte: UInt8) -> Bool {
        hasZeroByte(word ^ (ones &* UInt64(byte)))
    }

    private static func hasZeroByte(_ word: UInt64) -> Bool {
        (word &- ones) & ~word & highBits != 0
    }
}
