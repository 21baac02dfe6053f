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
        let rInteger = derInteger(r)
        let sInteger = derInteger(s)
        var der: [UInt8] = [0x30]
        appendLength(rInteger.count + sInteger.count, to: &der)
        der += rInteger
        der += sInteger
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

    /// A DER INTEGER holding a non-negative big-endian value: leading zeros dropped, one 0x00 added when
    /// the top bit is set.
    static func derInteger(_ value: UnsafeRawBufferPointer) -> [UInt8] {
        let firstNonZero = value.firstIndex(where: { $0 != 0 }) ?? value.count - 1
        var content = Array(value[firstNonZero...])
        if content[0] & 0x80 != 0 { content.insert(0, at: 0) }
        var encoded: [UInt8] = [0x02]
        appendLength(content.count, to: &encoded)
        return encoded + content
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
