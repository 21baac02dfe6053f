/// The JWS form of an ECDSA signature: r‖s, each exactly the curve's coordinate length (RFC 7518 §3.4).
///
/// OpenSSL wants DER, so the raw form is checked here and re-encoded. Checking that 0 < r, s < n ourselves
/// means a "psychic signature" (r = s = 0, CVE-2022-21449) is refused before any library sees it, whatever
/// that library does.
public enum ECDSASignature {
    /// The DER encoding of a raw r‖s signature, or nil when its length is not exactly 2 × the curve's
    /// coordinate length (DER input, truncated or extended signatures) or r or s is outside [1, n − 1].
    public static func derEncoding(ofRaw raw: UnsafeRawBufferPointer, curve: EllipticCurve) -> [UInt8]? {
        let half = curve.coordinateByteCount
        guard raw.count == 2 * half else { return nil }
        let r = UnsafeRawBufferPointer(rebasing: raw[0..<half])
        let s = UnsafeRawBufferPointer(rebasing: raw[half..<2 * half])
        let order = curve.order
        guard isInRange(r, order: order), isInRange(s, order: order) else { return nil }
        // One allocation: SEQUENCE { INTEGER r, INTEGER s }, each at most 1 + 2 + 67 bytes.
        var der: [UInt8] = []
        der.reserveCapacity(2 * half + 12)
        der.append(0x30)
        appendLength(derIntegerLength(r) + derIntegerLength(s), to: &der)
        appendDERInteger(r, to: &der)
        appendDERInteger(s, to: &der)
        return der
    }

    /// 0 < value < order, both big-endian of the same length.
    static func isInRange(_ value: UnsafeRawBufferPointer, order: [UInt8]) -> Bool {
        guard value.contains(where: { $0 != 0 }) else { return false }
        for (byte, limit) in zip(value, order) where byte != limit {
            return byte < limit
        }
        return false  // equal to the order
    }

    /// The encoded size of a DER INTEGER holding a non-negative big-endian value.
    static func derIntegerLength(_ value: UnsafeRawBufferPointer) -> Int {
        let content = derIntegerContentLength(value)
        return 1 + (content < 0x80 ? 1 : 2) + content
    }

    /// Leading zeros dropped, one 0x00 added when the top bit is set.
    static func derIntegerContentLength(_ value: UnsafeRawBufferPointer) -> Int {
        let firstNonZero = value.firstIndex(where: { $0 != 0 }) ?? value.count - 1
        return value.count - firstNonZero + (value[firstNonZero] & 0x80 != 0 ? 1 : 0)
    }

    static func appendDERInteger(_ value: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        let firstNonZero = value.firstIndex(where: { $0 != 0 }) ?? value.count - 1
        output.append(0x02)
        appendLength(derIntegerContentLength(value), to: &output)
        if value[firstNonZero] & 0x80 != 0 { output.append(0) }
        output.append(contentsOf: value[firstNonZero...])
    }

    static func appendLength(_ length: Int, to output: inout [UInt8]) {
        if length < 0x80 {
            output.append(UInt8(length))
        } else if length <= 0xFF {
            output += [0x81, UInt8(length)]
        } else {
            output += [0x82, UInt8(length >> 8), UInt8(length & 0xFF)]
        }
    }
}
