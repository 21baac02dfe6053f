public import NIOCore
public import NIOHTTP1

/// Reads the client's requests from the bytes of its connection: each head parsed strictly, then the body as its
/// framing delimits it (RFC 9112 §6). A pure state machine: it takes bytes and returns the parts NIOHTTP1's
/// decoder would (`HTTPServerRequestPart`), and the connection that owns it does the I/O.
///
/// Portcullis reads requests without NIOHTTP1's decoder (llhttp, then the ByteToMessageHandler around it) for
/// the same reason it reads responses without its response codec: the relay's floor (`Benchmarks/RelayFloor`).
/// This is the parser that faces untrusted clients, so it accepts a subset of what llhttp accepts, and
/// `fuzz/Sources/FuzzClientRequest` holds it to that: whatever it accepts, llhttp reads the same way.
/// Anything that two parsers could frame two ways is an error, and the connection answers 400 and closes.
public struct ClientRequestReader: Sendable {
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
    }

    /// The largest head (request line and header section) or trailer section accepted, in bytes.
    public let maxHeadBytes: Int
    private var state = State.head(scanned: 0)

    public init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Whether the next part read will be a request's head: the previous request, if any, has ended.
    public var isBetweenRequests: Bool {
        if case .head = state { return true }
        return false
    }

    /// The next part from the front of `buffer`, consuming what it used; nil when more bytes are needed. Throws
    /// when the bytes cannot be a valid request; the connection cannot be read any further then.
    public mutating func read(_ buffer: inout ByteBuffer) throws(ClientRequestError) -> HTTPServerRequestPart? {
        switch state {
        case .head(let scanned):
            // RFC 9112 §2.2: empty lines before a request line (a CRLF some clients send after a body) are ignored.
            while scanned == 0, buffer.readableBytes >= 2,
                buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A
            {
                buffer.moveReaderIndex(forwardBy: 2)
            }
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
            let parsed = try buffer.withUnsafeReadableBytes { bytes throws(ClientRequestError) in
                try ClientRequestHead.parse(UnsafeRawBufferPointer(rebasing: bytes[..<length]))
            }
            buffer.moveReaderIndex(forwardBy: length)
            switch parsed.framing {
            case .contentLength(let length): state = .fixedLength(remaining: length)
            case .chunked: state = .chunked(.start)
            }
            return .head(parsed.head)
        case .fixedLength(let remaining):
            if remaining == 0 {
                state = .head(scanned: 0)
                return .end(nil)
            }
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            state = .fixedLength(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)
        case .chunked(let framing):
            return try readChunked(framing, from: &buffer)
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
            let trailers = try buffer.withUnsafeReadableBytes { bytes throws(ClientRequestError) in
                try ClientRequestHead.trailers(UnsafeRawBufferPointer(rebasing: bytes[..<(length - 2)]))
            }
            buffer.moveReaderIndex(forwardBy: length)
            return .end(trailers)
        }
    }

    private mutating func readChunked(
        _ framing: ChunkFraming, from buffer: inout ByteBuffer
    ) throws(ClientRequestError) -> HTTPServerRequestPart? {
        var framing = framing
        while let byte = buffer.readInteger(as: UInt8.self) {
            switch framing.reading(byte, strictExtensions: true) {
            case .next(let next):
                framing = next
            case .data(let size):
                state = .chunkData(remaining: size)
                return try read(&buffer)
            case .lastChunk:
                state = .trailers(scanned: 0)
                return try read(&buffer)
            case .invalid:
                throw .badChunk
            }
        }
        state = .chunked(framing)
        return nil
    }
}

/// Why the client's bytes cannot be read as a request. Each ends the connection after a 400 (431 for a head
/// too large): what follows cannot be framed.
public enum ClientRequestError: Error, Equatable, CustomStringConvertible {
    case badRequestLine
    case badHeaderLine
    case badContentLength
    case contentLengthWithTransferEncoding
    case unsupportedTransferCoding
    case badChunk
    case headTooLarge

    public var description: String {
        switch self {
        case .badRequestLine: "the request line is not a known method, a request-target and HTTP/1.0 or HTTP/1.1"
        case .badHeaderLine: "a header line is malformed"
        case .badContentLength: "the Content-Length is invalid or repeated"
        case .contentLengthWithTransferEncoding: "the request has both Content-Length and Transfer-Encoding"
        case .unsupportedTransferCoding: "the request uses a transfer coding other than chunked"
        case .badChunk: "the chunked body is malformed"
        case .headTooLarge: "the request head is too large"
        }
    }
}
