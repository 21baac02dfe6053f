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
        /// A body with a length (zero for none), or chunked.
        case body(MessageBody)
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
        case .head(var scanned):
            guard
                let length = try HeadSection.length(
                    in: buffer, scanned: &scanned, maxBytes: maxHeadBytes, failing: UpstreamResponseError.self)
            else {
                state = .head(scanned: scanned)
                return nil
            }
            let head = try buffer.withUnsafeReadableBytes { bytes throws(UpstreamResponseError) in
                try UpstreamResponseHead(
                    parsing: UnsafeRawBufferPointer(rebasing: bytes[..<length]), requestIsHEAD: requestIsHEAD,
                    allocator: allocator)
            }
            buffer.moveReaderIndex(forwardBy: length)
            switch head.framing {
            case _ where head.status == 101: state = .switching
            case _ where head.isInterim: state = .head(scanned: 0)
            case .none: state = .body(.contentLength(0))
            case .contentLength(let length): state = .body(.contentLength(length))
            case .chunked: state = .body(.chunked(strictExtensions: false))
            case .untilClose: state = .untilClose
            }
            return .head(head)
        case .body(var body):
            switch try body.read(&buffer, maxTrailerBytes: maxHeadBytes, failing: UpstreamResponseError.self) {
            case .data(let data)?:
                state = .body(body)
                return .body(data)
            case .end(let trailers)?:
                state = .head(scanned: 0)
                let valid = trailers?.withUnsafeReadableBytes { HeadSection.isValidTrailerSection($0) } ?? true
                guard valid else { throw .badHeaderLine }
                return .end(trailers: trailers)
            case nil:
                state = .body(body)
                return nil
            }
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
