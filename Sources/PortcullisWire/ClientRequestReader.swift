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
        /// A body with a length (zero for none), or chunked.
        case body(MessageBody)
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
        case .head(var scanned):
            // RFC 9112 §2.2: empty lines before a request line (a CRLF some clients send after a body) are ignored.
            while scanned == 0, buffer.readableBytes >= 2,
                buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A
            {
                buffer.moveReaderIndex(forwardBy: 2)
            }
            guard
                let length = try HeadSection.length(
                    in: buffer, scanned: &scanned, maxBytes: maxHeadBytes, failing: ClientRequestError.self)
            else {
                state = .head(scanned: scanned)
                return nil
            }
            let parsed = try buffer.withUnsafeReadableBytes { bytes throws(ClientRequestError) in
                try ClientRequestHead.parse(UnsafeRawBufferPointer(rebasing: bytes[..<length]))
            }
            buffer.moveReaderIndex(forwardBy: length)
            switch parsed.framing {
            case .contentLength(let length): state = .body(.contentLength(length))
            case .chunked: state = .body(.chunked(strictExtensions: true))
            }
            return .head(parsed.head)
        case .body(var body):
            switch try body.read(&buffer, maxTrailerBytes: maxHeadBytes, failing: ClientRequestError.self) {
            case .data(let data)?:
                state = .body(body)
                return .body(data)
            case .end(let trailers)?:
                state = .head(scanned: 0)
                guard let trailers else { return .end(nil) }
                return .end(try ClientRequestHead.trailers(trailers))
            case nil:
                state = .body(body)
                return nil
            }
        }
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
    case missingHost
    case badHost

    public var description: String {
        switch self {
        case .badRequestLine: "the request line is not a known method, a request-target and HTTP/1.0 or HTTP/1.1"
        case .badHeaderLine: "a header line is malformed"
        case .badContentLength: "the Content-Length is invalid or repeated"
        case .contentLengthWithTransferEncoding: "the request has both Content-Length and Transfer-Encoding"
        case .unsupportedTransferCoding: "the request uses a transfer coding other than chunked"
        case .badChunk: "the chunked body is malformed"
        case .headTooLarge: "the request head is too large"
        case .missingHost: "an HTTP/1.1 request has no Host"
        case .badHost: "the Host is repeated or is not a host and an optional port"
        }
    }
}
