#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The three segments of a compact JWS (RFC 7515 §7.1), located without copying the token.
///
/// Offsets are into the token's UTF-8 bytes. The signing input is everything before the second dot,
/// exactly as received: it is never re-encoded.
public struct TokenParts: Sendable {
    /// The token as received.
    public let token: Substring
    /// The encoded protected header.
    public let header: Range<Int>
    /// The encoded payload.
    public let payload: Range<Int>
    /// The encoded signature.
    public let signature: Range<Int>

    /// The JWS signing input: `BASE64URL(header) '.' BASE64URL(payload)`.
    public var signingInput: Range<Int> { header.lowerBound..<payload.upperBound }

    /// Splits `token` into its three segments. Refuses empty and oversized tokens, JWE (five segments) and
    /// any other segment count.
    public init(_ token: Substring, maxBytes: Int) throws(TokenRefusal) {
        let layout =
            token.utf8.withContiguousStorageIfAvailable(Self.layout(of:))
            ?? Array(token.utf8).withUnsafeBufferPointer(Self.layout(of:))
        guard layout.count > 0 else { throw .malformed("Empty JWT") }
        guard layout.count <= maxBytes else { throw .malformed("JWT is larger than \(maxBytes) bytes") }
        switch layout.dots + 1 {
        case 3: break
        case 5: throw .malformed("Encrypted JWTs (JWE) are not supported")
        case let parts: throw .malformed("Expected 3 parts in JWT; got \(parts)")
        }
        self.token = token
        self.header = 0..<layout.firstDot
        self.payload = layout.firstDot + 1..<layout.secondDot
        self.signature = layout.secondDot + 1..<layout.count
    }

    /// The byte count, the number of dots and where the first two are (memchr: tokens are long and dots few).
    private static func layout(
        of bytes: UnsafeBufferPointer<UInt8>
    ) -> (count: Int, dots: Int, firstDot: Int, secondDot: Int) {
        guard let base = bytes.baseAddress else { return (0, 0, -1, -1) }
        var dots = 0
        var firstDot = -1
        var secondDot = -1
        var position = 0
        while position < bytes.count,
            let found = memchr(base + position, Int32(UInt8(ascii: ".")), bytes.count - position)
        {
            let offset = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            dots += 1
            if dots == 1 { firstDot = offset } else if dots == 2 { secondDot = offset }
            position = offset + 1
        }
        return (bytes.count, dots, firstDot, secondDot)
    }

    /// Calls `body` with the token's bytes, without copying when the token is contiguous UTF-8.
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E>? = token.utf8.withContiguousStorageIfAvailable { buffer in
            Result { () throws(E) in try body(UnsafeRawBufferPointer(buffer)) }
        }
        if let result { return try result.get() }
        return try Array(token.utf8).withUnsafeBytes { buffer in
            Result { () throws(E) in try body(buffer) }
        }.get()
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes at `range`, which must lie within this buffer.
    @inline(__always)
    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
}

/// Decodes one base64url segment into a temporary buffer (on the stack when small) and hands it to `body`.
/// Returns nil when the segment is not canonical base64url.
func withBase64URLDecoded<R, E: Error>(
    _ encoded: UnsafeRawBufferPointer,
    _ body: (UnsafeRawBufferPointer) throws(E) -> R
) throws(E) -> R? {
    guard let length = Base64URL.decodedLength(ofEncodedCount: encoded.count) else { return nil }
    let result: Result<R, E>? = withUnsafeTemporaryAllocation(byteCount: max(length, 1), alignment: 1) {
        storage in
        let output = UnsafeMutableRawBufferPointer(rebasing: storage[0..<length])
        guard Base64URL.decode(encoded, into: output) else { return nil }
        return Result { () throws(E) in try body(UnsafeRawBufferPointer(output)) }
    }
    return try result?.get()
}
