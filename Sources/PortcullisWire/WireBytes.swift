public import NIOCore

/// What the client's side adds to a relayed response's head (see `UpstreamResponseHead.forwarded`): its own
/// framing and connection lines, and the empty line that ends the head.
public enum ResponseBytes {
    /// How a body reaches the client.
    public enum Framing: Equatable, Sendable {
        /// As the upstream framed it (a length, or nothing), or until the close for an HTTP/1.0 client.
        case asIs
        /// Chunked by the proxy (`ChunkedFraming`): the upstream's body had no length, or was chunked (the
        /// chunks are re-made: their extensions are dropped).
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

    private static let endOfHead = ByteBuffer.staticText("\r\n")
    private static let closeAndEndOfHead = ByteBuffer.staticText("Connection: close\r\n\r\n")
    private static let chunkedAndEndOfHead = ByteBuffer.staticText("Transfer-Encoding: chunked\r\n\r\n")
    private static let chunkedCloseAndEndOfHead = ByteBuffer.staticText(
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
}

/// The chunked transfer coding's framing (RFC 9112 §7.1), for bodies the relay chunks itself: a response
/// going to the client, a request going to the upstream. The data goes out as it came, between the lines
/// written here.
public enum ChunkedFraming {
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

    /// The CRLF after each chunk's data.
    public static let chunkEnd = ByteBuffer.staticText("\r\n")

    /// The last chunk, the trailer lines (each CRLF-terminated) if any, and the empty line that ends the body.
    public static func lastChunk(trailers: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard var trailers else { return lastChunkWithoutTrailers }
        var bytes = allocator.buffer(capacity: trailers.readableBytes + 5)
        bytes.writeStaticString("0\r\n")
        bytes.writeBuffer(&trailers)
        bytes.writeStaticString("\r\n")
        return bytes
    }

    private static let lastChunkWithoutTrailers = ByteBuffer.staticText("0\r\n\r\n")
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

extension ByteBuffer {
    /// A buffer holding `text`, made once and shared: writing the same buffer to many channels copies nothing.
    fileprivate static func staticText(_ text: StaticString) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: text.utf8CodeUnitCount)
        buffer.writeStaticString(text)
        return buffer
    }
}
