public import NIOCore

/// The bytes a relayed response reaches the client as: the head the upstream's made into (see
/// `UpstreamResponseHead.forwarded`), ended by the client's own framing and connection lines, and the body
/// as it is, or chunked.
public enum ResponseBytes {
    /// How a body reaches the client.
    public enum Framing: Equatable, Sendable {
        /// As the upstream framed it (a length, or nothing), or until the close for an HTTP/1.0 client.
        case asIs
        /// Chunked by the proxy: the upstream's body had no length, or was chunked (the chunks are re-made:
        /// their extensions are dropped).
        case chunked
    }

    /// What follows the forwarded lines; written as a buffer of its own, shared by every response, so the
    /// forwarded head is never copied to append to it.
    public static func headEnd(framing: Framing, closing: Bool) -> ByteBuffer {
        switch (framing, closing) {
        case (.asIs, false): endOfHead
        case (.asIs, true): closeAndEndOfHead
        case (.chunked, false): chunkedAndEndOfHead
        case (.chunked, true): chunkedCloseAndEndOfHead
        }
    }

    /// `<size in hex>` CRLF: the line before a chunk of `size` bytes.
    public static func chunkSize(_ size: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var line = allocator.buffer(capacity: 18)
        let digits = (Int.bitWidth - size.leadingZeroBitCount + 3) / 4
        for shift in stride(from: (max(digits, 1) - 1) * 4, through: 0, by: -4) {
            line.writeInteger(hexDigits[(size >> shift) & 0xF])
        }
        line.writeStaticString("\r\n")
        return line
    }

    /// The last chunk, the trailer lines (each CRLF-terminated) if any, and the empty line that ends the body.
    public static func lastChunk(trailers: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard var trailers else { return lastChunkWithoutTrailers }
        var bytes = allocator.buffer(capacity: trailers.readableBytes + 5)
        bytes.writeStaticString("0\r\n")
        bytes.writeBuffer(&trailers)
        bytes.writeStaticString("\r\n")
        return bytes
    }

    /// The CRLF after each chunk's data.
    public static let lineEnd = staticBuffer("\r\n")

    private static let endOfHead = staticBuffer("\r\n")
    private static let closeAndEndOfHead = staticBuffer("Connection: close\r\n\r\n")
    private static let chunkedAndEndOfHead = staticBuffer("Transfer-Encoding: chunked\r\n\r\n")
    private static let chunkedCloseAndEndOfHead = staticBuffer(
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    private static let lastChunkWithoutTrailers = staticBuffer("0\r\n\r\n")
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func staticBuffer(_ text: StaticString) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: text.utf8CodeUnitCount)
        buffer.writeStaticString(text)
        return buffer
    }
}
