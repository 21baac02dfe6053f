public import NIOCore

/// Reads the upstream's responses from the bytes of its connection: each head parsed strictly and turned into
/// the head the client receives, then the body as its framing delimits it (RFC 9112 §6). A pure state machine:
/// it takes bytes and returns events, and the connection that owns it does the I/O.
///
/// Portcullis relays responses without NIOHTTP1's response codec: the client gets the header lines the upstream
/// wrote, copied as bytes, instead of an `HTTPHeaders` of strings built and encoded again. The codec was about
/// half of what the HTTP/1.1 layer cost per relayed request (`Benchmarks/RelayFloor`, modes `http` and
/// `hybrid`). Framing decides what is read from a pooled connection next, so it is strict: anything RFC 9112
/// does not allow, or that two parsers could read two ways, is an error, and the exchange ends with 502.
public struct UpstreamResponseReader: Sendable {
    /// What one call to `read` found.
    public enum Event: Sendable {
        case head(UpstreamResponseHead)
        /// Body bytes, without chunk framing.
        case body(ByteBuffer)
        /// The response ended. `trailers`: a chunked body's trailer lines, each CRLF-terminated, if it had any.
        case end(trailers: ByteBuffer?)
    }

    private enum State {
        /// Waiting for a head; `scanned` bytes at the front are known not to hold its end.
        case head(scanned: Int)
        case fixedLength(remaining: Int)
        /// A chunked body's framing, read byte by byte.
        case chunked(ChunkFraming)
        /// A chunk's data.
        case chunkData(remaining: Int)
        /// A chunked body's trailer section; `scanned` as for a head.
        case trailers(scanned: Int)
        case untilClose
        /// A `101` was read: its end comes next, then the bytes are no longer HTTP.
        case switching
        case switched
    }

    /// The largest head (or trailer section) accepted, in bytes.
    public let maxHeadBytes: Int
    private var state = State.head(scanned: 0)
    private var requestIsHEAD = false

    public init(maxHeadBytes: Int = 64 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Called as each request is sent: a response to `HEAD` has no body, whatever its head says.
    public mutating func expectResponse(toHEAD: Bool) {
        requestIsHEAD = toHEAD
    }

    /// Whether a `101` was read and its end delivered: what is left in the buffer belongs to the new protocol.
    public var hasSwitchedProtocols: Bool {
        if case .switched = state { return true }
        return false
    }

    /// The next event from the front of `buffer`, consuming what it used; nil when more bytes are needed (or
    /// after a switch of protocols). Throws when the bytes cannot be a valid response.
    public mutating func read(
        _ buffer: inout ByteBuffer, allocator: ByteBufferAllocator
    ) throws(UpstreamResponseError)
        -> Event?
    {
        switch state {
        case .head(let scanned):
            let length: Int
            switch HeadSection.scan(buffer, scanned: scanned) {
            case .complete(let complete): length = complete
            case .incomplete(let scanned):
                guard buffer.readableBytes <= maxHeadBytes else { throw .headTooLarge }
                state = .head(scanned: scanned)
                return nil
            case .bareLineFeed: throw .badHeaderLine
            }
            guard length <= maxHeadBytes else { throw .headTooLarge }
            let head = try buffer.withUnsafeReadableBytes { bytes throws(UpstreamResponseError) in
                try UpstreamResponseHead(
                    parsing: UnsafeRawBufferPointer(rebasing: bytes[..<length]), requestIsHEAD: requestIsHEAD,
                    allocator: allocator)
            }
            buffer.moveReaderIndex(forwardBy: length)
            switch head.framing {
            case _ where head.status == 101: state = .switching
            case _ where head.isInterim: state = .head(scanned: 0)
            case .none: state = .fixedLength(remaining: 0)
            case .contentLength(let length): state = .fixedLength(remaining: length)
            case .chunked: state = .chunked(.start)
            case .untilClose: state = .untilClose
            }
            return .head(head)
        case .fixedLength(let remaining):
            if remaining == 0 {
                state = .head(scanned: 0)
                return .end(trailers: nil)
            }
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            state = .fixedLength(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)
        case .chunked(let body):
            return try readChunked(body, from: &buffer, allocator: allocator)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            state = remaining == count ? .chunked(.dataCarriageReturn) : .chunkData(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)
        case .trailers(let scanned):
            let length: Int
            switch HeadSection.scan(buffer, scanned: scanned, emptyAllowed: true) {
            case .complete(let complete): length = complete
            case .incomplete(let scanned):
                guard buffer.readableBytes <= maxHeadBytes else { throw .headTooLarge }
                state = .trailers(scanned: scanned)
                return nil
            case .bareLineFeed: throw .badHeaderLine
            }
            guard length <= maxHeadBytes else { throw .headTooLarge }
            state = .head(scanned: 0)
            if length == 2 {
                buffer.moveReaderIndex(forwardBy: 2)
                return .end(trailers: nil)
            }
            let valid = buffer.withUnsafeReadableBytes { bytes in
                HeadSection.isValidTrailerSection(UnsafeRawBufferPointer(rebasing: bytes[..<(length - 2)]))
            }
            guard valid else { throw .badHeaderLine }
            let trailers = buffer.readSlice(length: length - 2)!
            buffer.moveReaderIndex(forwardBy: 2)
            return .end(trailers: trailers)
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .switching:
            state = .switched
            return .end(trailers: nil)
        case .switched:
            return nil
        }
    }

    /// The upstream closed its side. A body that lasts until the close ends here; a close between responses is
    /// nothing (nil); a close anywhere else cuts a response short, which throws.
    public mutating func readEndOfStream(leftover buffer: ByteBuffer) throws(UpstreamResponseError) -> Event? {
        switch state {
        case .untilClose:
            state = .head(scanned: 0)
            return .end(trailers: nil)
        case .head where buffer.readableBytes == 0, .switched:
            return nil
        default:
            throw .truncated
        }
    }

    private mutating func readChunked(
        _ framing: ChunkFraming, from buffer: inout ByteBuffer, allocator: ByteBufferAllocator
    ) throws(UpstreamResponseError) -> Event? {
        var framing = framing
        while let byte = buffer.readInteger(as: UInt8.self) {
            switch framing.reading(byte) {
            case .next(let next):
                framing = next
            case .data(let size):
                state = .chunkData(remaining: size)
                return try read(&buffer, allocator: allocator)
            case .lastChunk:
                state = .trailers(scanned: 0)
                return try read(&buffer, allocator: allocator)
            case .invalid:
                throw .badChunk
            }
        }
        state = .chunked(framing)
        return nil
    }
}

/// Why the upstream's bytes cannot be relayed as a response.
public enum UpstreamResponseError: Error, Equatable, CustomStringConvertible {
    case badStatusLine
    case badHeaderLine
    case badContentLength
    case contentLengthWithTransferEncoding
    case unsupportedTransferCoding
    case badChunk
    case headTooLarge
    case truncated

    public var description: String {
        switch self {
        case .badStatusLine: "the upstream's status line is not HTTP/1.0 or HTTP/1.1 with a status of 100-599"
        case .badHeaderLine: "the upstream sent a malformed header line"
        case .badContentLength: "the upstream sent an invalid or repeated Content-Length"
        case .contentLengthWithTransferEncoding: "the upstream sent both Content-Length and Transfer-Encoding"
        case .unsupportedTransferCoding: "the upstream used a transfer coding other than chunked"
        case .badChunk: "the upstream's chunked body is malformed"
        case .headTooLarge: "the upstream's response head is too large"
        case .truncated: "the upstream closed the connection in the middle of a response"
        }
    }
}
