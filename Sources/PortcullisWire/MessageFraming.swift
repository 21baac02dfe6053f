import NIOCore

/// Where a head (or a trailer section) ends, in bytes that arrive in pieces. Shared by the request and the
/// response reader.
enum HeadSection {
    enum Scan {
        /// The section's length, up to and including the empty line that ends it.
        case complete(length: Int)
        /// Not all there yet; this many bytes at the front are known not to hold its end.
        case incomplete(scanned: Int)
        /// A bare LF: RFC 9112 §2.2 lets a recipient take it as a line end, which is how two parsers come to
        /// disagree, so it is refused at once (waiting for a CRLF that never comes would end in a timeout).
        case bareLineFeed
    }

    /// Scans `buffer` from `scanned` on. With `emptyAllowed`, the section may be the empty line alone (a
    /// trailer section).
    static func scan(_ buffer: ByteBuffer, scanned: Int, emptyAllowed: Bool = false) -> Scan {
        buffer.withUnsafeReadableBytes { bytes in
            if emptyAllowed, bytes.count >= 2, bytes[0] == UInt8(ascii: "\r"), bytes[1] == UInt8(ascii: "\n") {
                return .complete(length: 2)
            }
            if bytes.first == UInt8(ascii: "\n") { return .bareLineFeed }
            var index = max(scanned, 1)
            while index < bytes.count {
                // Most bytes are not LF: eight at a time past those, the others looked at only at a candidate.
                if index + 8 <= bytes.count,
                    !SWAR.hasByte(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self), UInt8(ascii: "\n"))
                {
                    index += 8
                    continue
                }
                if bytes[index] == UInt8(ascii: "\n") {
                    guard bytes[index - 1] == UInt8(ascii: "\r") else { return .bareLineFeed }
                    if index >= 3, bytes[index - 2] == UInt8(ascii: "\n"), bytes[index - 3] == UInt8(ascii: "\r") {
                        return .complete(length: index + 1)
                    }
                }
                index += 1
            }
            return .incomplete(scanned: max(0, bytes.count - 1))
        }
    }

    /// The section's length once it is all there, or nil (with `scanned` moved on) while it is not. Throws
    /// for a bare LF, or for a section over `maxBytes`, complete or not (so it is never buffered without
    /// bound).
    static func length<Failure: MessageFramingError>(
        in buffer: ByteBuffer, scanned: inout Int, emptyAllowed: Bool = false, maxBytes: Int, failing: Failure.Type
    ) throws(Failure) -> Int? {
        switch scan(buffer, scanned: scanned, emptyAllowed: emptyAllowed) {
        case .complete(let length):
            guard length <= maxBytes else { throw .headTooLarge }
            return length
        case .incomplete(let scannedNow):
            guard buffer.readableBytes <= maxBytes else { throw .headTooLarge }
            scanned = scannedNow
            return nil
        case .bareLineFeed:
            throw .badHeaderLine
        }
    }

    /// Whether `bytes`, a trailer section without its final empty line, is made of valid header lines.
    static func isValidTrailerSection(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var start = 0
        while start < bytes.count {
            guard let line = HeaderLine(in: bytes, at: start) else { return false }
            start = line.end
        }
        return true
    }
}

/// Where a chunked body's framing is (RFC 9112 §7.1), read byte by byte; the data between chunk lines is the
/// reader's own state. Shared by the request and the response reader.
enum ChunkFraming: Sendable {
    case size(Int, digits: Int)
    /// Any field characters up to the CR (responses: RFC 9112 §7.1.1 lets extensions be ignored).
    case sizeExtension(Int)
    /// `;name[=value]`, tokens only, no whitespace (requests: what llhttp's strict mode accepts). Where in
    /// the extension: its name started (`named`), and for the value, whether it started (`valued`).
    case strictExtensionName(Int, named: Bool)
    case strictExtensionValue(Int, valued: Bool)
    case sizeLineFeed(Int)
    case dataCarriageReturn
    case dataLineFeed

    static let start = ChunkFraming.size(0, digits: 0)

    enum Step {
        case next(ChunkFraming)
        /// A chunk of this many bytes (more than zero) follows.
        case data(Int)
        /// The last chunk: the trailer section follows.
        case lastChunk
        case invalid
    }

    /// - Parameter strictExtensions: extensions in llhttp's strict grammar (`strictExtensionName`), else any
    ///   field characters.
    func reading(_ byte: UInt8, strictExtensions: Bool = false) -> Step {
        switch self {
        case .size(let size, let digits):
            if let digit = Self.hexValue(byte) {
                // 15 hex digits cannot overflow an Int; a chunk that size is not real anyway.
                guard digits < 15 else { return .invalid }
                return .next(.size(size << 4 | digit, digits: digits + 1))
            }
            if digits > 0 && byte == UInt8(ascii: ";") {
                return .next(strictExtensions ? .strictExtensionName(size, named: false) : .sizeExtension(size))
            }
            if digits > 0 && byte == UInt8(ascii: "\r") { return .next(.sizeLineFeed(size)) }
            return .invalid
        case .sizeExtension(let size):
            // Extensions are ignored (RFC 9112 §7.1.1), but must be made of field characters.
            if byte == UInt8(ascii: "\r") { return .next(.sizeLineFeed(size)) }
            return HeaderLine.isFieldCharacter(byte) ? .next(self) : .invalid
        case .strictExtensionName(let size, let named):
            if HeaderLine.isTokenCharacter(byte) { return .next(.strictExtensionName(size, named: true)) }
            guard named else { return .invalid }
            return switch byte {
            case UInt8(ascii: "="): .next(.strictExtensionValue(size, valued: false))
            case UInt8(ascii: ";"): .next(.strictExtensionName(size, named: false))
            case UInt8(ascii: "\r"): .next(.sizeLineFeed(size))
            default: .invalid
            }
        case .strictExtensionValue(let size, let valued):
            if HeaderLine.isTokenCharacter(byte) { return .next(.strictExtensionValue(size, valued: true)) }
            guard valued else { return .invalid }
            return switch byte {
            case UInt8(ascii: ";"): .next(.strictExtensionName(size, named: false))
            case UInt8(ascii: "\r"): .next(.sizeLineFeed(size))
            default: .invalid
            }
        case .sizeLineFeed(let size):
            guard byte == UInt8(ascii: "\n") else { return .invalid }
            return size == 0 ? .lastChunk : .data(size)
        case .dataCarriageReturn:
            return byte == UInt8(ascii: "\r") ? .next(.dataLineFeed) : .invalid
        case .dataLineFeed:
            return byte == UInt8(ascii: "\n") ? .next(.start) : .invalid
        }
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}

/// What a reader throws when a message's framing is wrong; each reader has its own error type.
protocol MessageFramingError: Error {
    static var badChunk: Self { get }
    static var badHeaderLine: Self { get }
    static var headTooLarge: Self { get }
    static var badContentLength: Self { get }
    static var unsupportedTransferCoding: Self { get }
}

/// What a head's framing fields say (RFC 9112 §6.1–6.3), read strictly: `Content-Length` once, as digits
/// (repeated, even with the same value, it is refused: llhttp refuses it too, and one length goes on);
/// `Transfer-Encoding` once, as exactly `chunked` (a list or another coding could be framed differently by
/// the next parser, and the relay must undo the coding to frame the body itself). Whether both at once are
/// allowed is the caller's: a request never, a response only where it has no body anyway.
struct FramingFields {
    private(set) var contentLength: Int?
    private(set) var chunked = false

    /// Takes `line` if it is a framing field (`name` is its known name).
    mutating func take<Failure: MessageFramingError>(
        _ line: HeaderLine, named name: HeaderLine.KnownName?, in bytes: UnsafeRawBufferPointer,
        failing: Failure.Type
    ) throws(Failure) {
        switch name {
        case .contentLength:
            guard contentLength == nil, let length = line.decimalValue(in: bytes) else { throw .badContentLength }
            contentLength = length
        case .transferEncoding:
            guard !chunked, line.value(in: bytes, equalsIgnoringCase: "chunked") else {
                throw .unsupportedTransferCoding
            }
            chunked = true
        case .connection, .otherHopByHop, nil:
            break
        }
    }
}

extension UpstreamResponseError: MessageFramingError {}
extension ClientRequestError: MessageFramingError {}

/// A message's body, read from bytes as its framing delimits it (RFC 9112 §6, §7.1): a length, or chunks and
/// a trailer section. Shared by the request and the response reader, which each check the trailer lines
/// their own way.
struct MessageBody: Sendable {
    private enum State {
        case fixedLength(remaining: Int)
        /// A chunked body's framing, read byte by byte.
        case chunked(ChunkFraming)
        /// A chunk's data.
        case chunkData(remaining: Int)
        /// The trailer section after the last chunk; `scanned` bytes at the front are known not to hold its end.
        case trailers(scanned: Int)
    }

    enum Event {
        /// Body bytes, without chunk framing.
        case data(ByteBuffer)
        /// The body ended. `trailers`: the trailer lines of a chunked body, each CRLF-terminated, unchecked;
        /// nil when there were none.
        case end(trailers: ByteBuffer?)
    }

    private var state: State
    /// Chunk extensions in llhttp's strict grammar only (`ChunkFraming.strictExtensionName`).
    private let strictExtensions: Bool

    static func contentLength(_ length: Int) -> MessageBody {
        MessageBody(state: .fixedLength(remaining: length), strictExtensions: false)
    }

    static func chunked(strictExtensions: Bool) -> MessageBody {
        MessageBody(state: .chunked(.start), strictExtensions: strictExtensions)
    }

    /// The next event from the front of `buffer`, consuming what it used; nil when more bytes are needed.
    /// Throws the owner's own errors: `badChunk`, `badHeaderLine` for a bare LF among the trailers,
    /// `headTooLarge` for a trailer section over `maxTrailerBytes`.
    mutating func read<Failure: MessageFramingError>(
        _ buffer: inout ByteBuffer, maxTrailerBytes: Int, failing: Failure.Type
    ) throws(Failure) -> Event? {
        switch state {
        case .fixedLength(let remaining):
            if remaining == 0 { return .end(trailers: nil) }
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            state = .fixedLength(remaining: remaining - count)
            return .data(buffer.readSlice(length: count)!)
        case .chunked(var framing):
            while let byte = buffer.readInteger(as: UInt8.self) {
                switch framing.reading(byte, strictExtensions: strictExtensions) {
                case .next(let next):
                    framing = next
                case .data(let size):
                    state = .chunkData(remaining: size)
                    return try read(&buffer, maxTrailerBytes: maxTrailerBytes, failing: Failure.self)
                case .lastChunk:
                    state = .trailers(scanned: 0)
                    return try read(&buffer, maxTrailerBytes: maxTrailerBytes, failing: Failure.self)
                case .invalid:
                    throw .badChunk
                }
            }
            state = .chunked(framing)
            return nil
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            state = remaining == count ? .chunked(.dataCarriageReturn) : .chunkData(remaining: remaining - count)
            return .data(buffer.readSlice(length: count)!)
        case .trailers(var scanned):
            guard
                let length = try HeadSection.length(
                    in: buffer, scanned: &scanned, emptyAllowed: true, maxBytes: maxTrailerBytes, failing: Failure.self)
            else {
                state = .trailers(scanned: scanned)
                return nil
            }
            // The body is over: reading again gives its end again, and the owner moves on to the next head.
            state = .fixedLength(remaining: 0)
            let trailers = length == 2 ? nil : buffer.readSlice(length: length - 2)!
            buffer.moveReaderIndex(forwardBy: 2)
            return .end(trailers: trailers)
        }
    }
}
