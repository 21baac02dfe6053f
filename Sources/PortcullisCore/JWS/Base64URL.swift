/// Base64url without padding (RFC 7515 §2, RFC 4648 §5), decoded strictly.
///
/// Refused: padding, whitespace, any byte outside the alphabet, a length of 1 mod 4 (never produced by an
/// encoder) and non-zero unused bits in the last character (a second spelling of the same bytes, which
/// would let a token be altered without touching its signature).
public enum Base64URL {
    /// The decoded length for `count` encoded characters, or nil when no encoder produces that length.
    public static func decodedLength(ofEncodedCount count: Int) -> Int? {
        switch count % 4 {
        case 0: count / 4 * 3
        case 2: count / 4 * 3 + 1
        case 3: count / 4 * 3 + 2
        default: nil
        }
    }

    /// Decodes `encoded` into `output`, which must hold exactly `decodedLength(ofEncodedCount:)` bytes.
    /// Returns false for any input that is not canonical base64url.
    public static func decode(_ encoded: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let length = decodedLength(ofEncodedCount: encoded.count), output.count == length else { return false }
        return sextets.withUnsafeBufferPointer { table in decode(encoded, into: output, table: table) }
    }

    private static func decode(
        _ encoded: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        table: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        @inline(__always) func sextet(_ byte: UInt8) -> UInt8 { table[Int(byte)] }
        var outIndex = 0
        var inIndex = 0
        let fullQuads = encoded.count / 4
        for _ in 0..<fullQuads {
            let a = sextet(encoded[inIndex])
            let b = sextet(encoded[inIndex + 1])
            let c = sextet(encoded[inIndex + 2])
            let d = sextet(encoded[inIndex + 3])
            guard (a | b | c | d) & 0x80 == 0 else { return false }
            let bits = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
            output[outIndex] = UInt8(truncatingIfNeeded: bits >> 16)
            output[outIndex + 1] = UInt8(truncatingIfNeeded: bits >> 8)
            output[outIndex + 2] = UInt8(truncatingIfNeeded: bits)
            outIndex += 3
            inIndex += 4
        }
        switch encoded.count - inIndex {
        case 2:
            let a = sextet(encoded[inIndex])
            let b = sextet(encoded[inIndex + 1])
            guard (a | b) & 0x80 == 0, b & 0x0F == 0 else { return false }
            output[outIndex] = a << 2 | b >> 4
        case 3:
            let a = sextet(encoded[inIndex])
            let b = sextet(encoded[inIndex + 1])
            let c = sextet(encoded[inIndex + 2])
            guard (a | b | c) & 0x80 == 0, c & 0x03 == 0 else { return false }
            output[outIndex] = a << 2 | b >> 4
            output[outIndex + 1] = b << 4 | c >> 2
        default:
            break
        }
        return true
    }

    /// Whether `encoded` is canonical base64url, checked without decoding it.
    public static func isCanonical(_ encoded: UnsafeRawBufferPointer) -> Bool {
        guard decodedLength(ofEncodedCount: encoded.count) != nil else { return false }
        return sextets.withUnsafeBufferPointer { table in
            var invalid: UInt8 = 0
            for byte in encoded { invalid |= table[Int(byte)] }
            guard invalid & 0x80 == 0 else { return false }
            // The unused low bits of the last character must be zero.
            switch encoded.count % 4 {
            case 2: return table[Int(encoded[encoded.count - 1])] & 0x0F == 0
            case 3: return table[Int(encoded[encoded.count - 1])] & 0x03 == 0
            default: return true
            }
        }
    }

    /// Decodes into a new array, or nil when the input is not canonical base64url.
    public static func decode(_ encoded: some StringProtocol) -> [UInt8]? {
        var utf8 = Array(encoded.utf8)
        return utf8.withUnsafeMutableBytes { encodedBytes -> [UInt8]? in
            guard let length = decodedLength(ofEncodedCount: encodedBytes.count) else { return nil }
            var output = [UInt8](repeating: 0, count: length)
            let ok = output.withUnsafeMutableBytes { decode(UnsafeRawBufferPointer(encodedBytes), into: $0) }
            return ok ? output : nil
        }
    }

    /// Encodes without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bitCount = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bitCount += 8
            while bitCount >= 6 {
                bitCount -= 6
                output.append(alphabet[Int(buffer >> UInt32(bitCount) & 0x3F)])
            }
        }
        if bitCount > 0 {
            output.append(alphabet[Int(buffer << UInt32(6 - bitCount) & 0x3F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Every byte's 6-bit value (0xFF outside the alphabet): one load per character on the hot path.
    private static let sextets: [UInt8] = (0...255).map { value -> UInt8 in
        let byte = UInt8(value)
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return 0xFF
        }
    }
}
