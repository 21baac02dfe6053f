/// Byte-level text helpers shared by the policy layer. Everything here works on UTF-8 code units, never on
/// `Character`s: HTTP syntax is ASCII, and grapheme clustering would let a combining mark after a delimiter
/// hide it (`?` followed by U+0301 is one `Character` that is not `"?"`).
/// Byte-level text rules shared by the policy and, at package level, by the proxy's gate and header rewrite.
package enum PolicyText {
    static let slash = UInt8(ascii: "/")
    static let percent = UInt8(ascii: "%")
    @usableFromInline static let space = UInt8(ascii: " ")
    @usableFromInline static let tab = UInt8(ascii: "\t")

    /// The value of one hex digit, either case.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// The uppercase hex digit for a value below 16 (RFC 3986 §6.2.2.1: escapes are normalized to uppercase).
    static func upperHexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }

    @inlinable
    package static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 0x20 : byte
    }

    /// Equal ignoring ASCII letter case only (header names, auth schemes, methods): no Unicode case folding,
    /// so `ſ` (long s) never matches `s`.
    @inlinable
    package static func equalsIgnoringASCIICase(_ lhs: some StringProtocol, _ rhs: some StringProtocol) -> Bool {
        // Native strings are contiguous UTF-8: compare the buffers directly. `zip` here ran through unspecialized
        // generic iterators and runtime metadata lookups on every header of every request.
        let contiguous = lhs.utf8.withContiguousStorageIfAvailable { left in
            rhs.utf8.withContiguousStorageIfAvailable { right in equalsIgnoringASCIICase(left, right) }
        }
        if let contiguous, let result = contiguous { return result }
        // Text that is not stored contiguously (bridged, on other platforms): a native copy is.
        return equalsIgnoringASCIICase(String(lhs), String(rhs))
    }

    /// The common case, without generics: header names in `HTTPHeaders` are `String`s, and the optimizer does
    /// not always specialize the generic version across modules.
    @inlinable
    package static func equalsIgnoringASCIICase(_ lhs: String, _ rhs: String) -> Bool {
        var lhs = lhs
        var rhs = rhs
        return lhs.withUTF8 { left in rhs.withUTF8 { right in equalsIgnoringASCIICase(left, right) } }
    }

    @inlinable
    package static func equalsIgnoringASCIICase(
        _ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>
    )
        -> Bool
    {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count where asciiLowercased(lhs[index]) != asciiLowercased(rhs[index]) {
            return false
        }
        return true
    }

    /// Code-unit equality. Swift's `==` on strings is canonical equivalence, which would treat a precomposed
    /// and a decomposed spelling as the same role or token; the backend compares bytes, so the policy does too.
    static func sameBytes(_ lhs: some StringProtocol, _ rhs: some StringProtocol) -> Bool {
        lhs.utf8.elementsEqual(rhs.utf8)
    }

    /// ASCII uppercase (HTTP methods); other bytes unchanged.
    static func asciiUppercased(_ text: some StringProtocol) -> String {
        String(
            decoding: text.utf8.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") ? $0 - 0x20 : $0 },
            as: UTF8.self)
    }

    /// `text` without leading and trailing spaces and tabs (HTTP's optional whitespace).
    @inlinable
    package static func trimmingOptionalWhitespace(_ text: Substring) -> Substring {
        let utf8 = text.utf8
        guard let first = utf8.firstIndex(where: { $0 != space && $0 != tab }),
            let last = utf8.lastIndex(where: { $0 != space && $0 != tab })
        else { return text[text.endIndex...] }
        return Substring(utf8[first...last])
    }

    /// Decodes every `%XX` escape, and `+` as a space when `plusAsSpace` (application/x-www-form-urlencoded).
    /// Nil when an escape is invalid or the result is not UTF-8.
    static func percentDecoded(_ text: Substring, plusAsSpace: Bool) -> String? {
        let bytes = Array(text.utf8)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == percent {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                    let low = hexValue(bytes[index + 2])
                else { return nil }
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(plusAsSpace && byte == UInt8(ascii: "+") ? space : byte)
                index += 1
            }
        }
        return String(validating: decoded, as: UTF8.self)
    }
}
