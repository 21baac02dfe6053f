public import NIOCore

/// How a response's body ends (RFC 9112 §6.3).
public enum ResponseFraming: Equatable, Sendable {
    /// No body: a response to HEAD, a 1xx, 204 or 304.
    case none
    case contentLength(Int)
    case chunked
    /// Neither a length nor chunked: the body is everything until the upstream closes.
    case untilClose
}

/// A response head from the upstream, parsed strictly, and the head the client receives made from it.
public struct UpstreamResponseHead: Sendable {
    public let status: Int
    public let framing: ResponseFraming
    /// Whether the upstream keeps the connection open after this response: HTTP/1.1 without `Connection:
    /// close`, or HTTP/1.0 with `keep-alive`; never when the body lasts until the close.
    public let keepsAlive: Bool
    /// The start of the client's head: `HTTP/1.1`, the status code and reason as the upstream wrote them, then
    /// each header line the client may see, CRLF-terminated. A final response loses its hop-by-hop lines
    /// (RFC 9110 §7.6.1) and those its `Connection` names; a 1xx or `101` keeps every line. Not yet the
    /// framing and connection lines the client's side adds, nor the empty line that ends the head.
    public let forwarded: ByteBuffer

    /// A 1xx other than `101`: another head follows.
    public var isInterim: Bool { status < 200 && status != 101 }

    /// Parses `bytes`, a whole head up to and including the empty line that ends it.
    public init(
        parsing bytes: UnsafeRawBufferPointer, requestIsHEAD: Bool, allocator: ByteBufferAllocator
    )
        throws(UpstreamResponseError)
    {
        // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF; the SP before an empty reason
        // is commonly left out, and accepted.
        guard bytes.count >= 14, bytes.starts(with: "HTTP/1.".utf8), bytes[8] == UInt8(ascii: " "),
            bytes[7] == UInt8(ascii: "0") || bytes[7] == UInt8(ascii: "1")
        else { throw .badStatusLine }
        let isHTTP11 = bytes[7] == UInt8(ascii: "1")
        var status = 0
        for index in 9..<12 {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { throw .badStatusLine }
            status = status * 10 + Int(digit)
        }
        guard (100...599).contains(status) else { throw .badStatusLine }
        var index = 12
        if bytes[index] == UInt8(ascii: " ") {
            index += 1
            while bytes[index] != UInt8(ascii: "\r") {
                guard HeaderLine.isFieldCharacter(bytes[index]) else { throw .badStatusLine }
                index += 1
            }
        }
        guard bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n") else {
            throw .badStatusLine
        }
        let fieldsStart = index + 2
        let fieldsEnd = bytes.count - 2

        // First pass: check every line, and read what framing and the connection's fate depend on.
        var contentLength: Int?
        var chunked = false
        var close = false
        var keepAlive = false
        /// Header names `Connection` lists beyond the fixed hop-by-hop ones: rare, so allocated only then.
        var named: [Range<Int>] = []
        index = fieldsStart
        while index < fieldsEnd {
            let line = try HeaderLine(in: bytes, at: index)
            index = line.end
            switch line.knownName(in: bytes) {
            case .contentLength:
                guard contentLength == nil, let length = line.decimalValue(in: bytes) else {
                    throw .badContentLength
                }
                contentLength = length
            case .transferEncoding:
                // Only `chunked`, once: a coding the proxy cannot undo, or a list, would reach the client
                // as a body it could not read.
                guard !chunked, line.value(in: bytes, equalsIgnoringCase: "chunked") else {
                    throw .unsupportedTransferCoding
                }
                chunked = true
            case .connection:
                line.forEachListElement(in: bytes) { token in
                    if HeaderLine.equalsIgnoringCase(bytes, token, "close") {
                        close = true
                    } else if HeaderLine.equalsIgnoringCase(bytes, token, "keep-alive") {
                        keepAlive = true
                    } else if HeaderLine.knownName(bytes, token) == nil {
                        named.append(token)
                    }
                }
            case .otherHopByHop, nil:
                break
            }
        }

        let hasNoBody = requestIsHEAD || status < 200 || status == 204 || status == 304
        if hasNoBody {
            framing = .none
        } else if chunked {
            // RFC 9112 §6.1 lets a recipient drop the length and go by the coding; both at once is how
            // responses are smuggled past one of two parsers, so neither wins.
            guard contentLength == nil else { throw .contentLengthWithTransferEncoding }
            framing = .chunked
        } else if let contentLength {
            framing = .contentLength(contentLength)
        } else {
            framing = .untilClose
        }
        keepsAlive = framing != .untilClose && !close && (isHTTP11 || keepAlive)
        self.status = status

        // Second pass: the client's head.
        var forwarded = allocator.buffer(capacity: bytes.count + 64)
        forwarded.writeStaticString("HTTP/1.1 ")
        forwarded.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[9..<fieldsStart]))
        let keepsEveryLine = status < 200
        index = fieldsStart
        while index < fieldsEnd {
            let line = try HeaderLine(in: bytes, at: index)
            defer { index = line.end }
            if !keepsEveryLine {
                let known = line.knownName(in: bytes)
                switch known {
                case .connection, .transferEncoding, .otherHopByHop: continue
                case .contentLength, nil: break
                }
                // Framing and cookies stay whatever `Connection` names, as they did with the old relay.
                if !named.isEmpty, known == nil, !line.isSetCookie(in: bytes),
                    named.contains(where: { HeaderLine.equalsIgnoringCase(bytes, $0, line.name) })
                {
                    continue
                }
            }
            forwarded.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[line.start..<line.end]))
        }
        self.forwarded = forwarded
    }
}

/// One `name: value` line of a head or trailer section, checked (RFC 9110 §5.1, §5.5; RFC 9112 §5): the name
/// a token right before the colon, the value field characters only, the line ended by CRLF. No obs-fold, no
/// bare CR or LF, no space before the colon.
struct HeaderLine {
    let start: Int
    let name: Range<Int>
    /// Without the optional whitespace around it.
    let value: Range<Int>
    /// Just past the line's LF.
    let end: Int

    init(in bytes: UnsafeRawBufferPointer, at start: Int) throws(UpstreamResponseError) {
        var index = start
        while index < bytes.count, Self.isTokenCharacter(bytes[index]) { index += 1 }
        guard index > start, index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw .badHeaderLine }
        name = start..<index
        index += 1
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") {
            index += 1
        }
        let valueStart = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "\r") {
            guard Self.isFieldCharacter(bytes[index]) else { throw .badHeaderLine }
            index += 1
        }
        guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") else { throw .badHeaderLine }
        var valueEnd = index
        while valueEnd > valueStart,
            bytes[valueEnd - 1] == UInt8(ascii: " ") || bytes[valueEnd - 1] == UInt8(ascii: "\t")
        {
            valueEnd -= 1
        }
        self.start = start
        value = valueStart..<valueEnd
        end = index + 2
    }

    /// The header names the relay acts on.
    enum KnownName {
        case contentLength
        case transferEncoding
        case connection
        /// `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Upgrade`, `Proxy-Authorization`.
        case otherHopByHop
    }

    func knownName(in bytes: UnsafeRawBufferPointer) -> KnownName? {
        Self.knownName(bytes, name)
    }

    static func knownName(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> KnownName? {
        // By length first: most names are rejected without comparing a byte.
        switch name.count {
        case 2: equalsIgnoringCase(bytes, name, "te") ? .otherHopByHop : nil
        case 7:
            equalsIgnoringCase(bytes, name, "trailer") || equalsIgnoringCase(bytes, name, "upgrade")
                ? .otherHopByHop : nil
        case 10:
            if equalsIgnoringCase(bytes, name, "connection") {
                .connection
            } else {
                equalsIgnoringCase(bytes, name, "keep-alive") ? .otherHopByHop : nil
            }
        case 14: equalsIgnoringCase(bytes, name, "content-length") ? .contentLength : nil
        case 16: equalsIgnoringCase(bytes, name, "proxy-connection") ? .otherHopByHop : nil
        case 17: equalsIgnoringCase(bytes, name, "transfer-encoding") ? .transferEncoding : nil
        case 19: equalsIgnoringCase(bytes, name, "proxy-authorization") ? .otherHopByHop : nil
        default: nil
        }
    }

    func isSetCookie(in bytes: UnsafeRawBufferPointer) -> Bool {
        Self.equalsIgnoringCase(bytes, name, "set-cookie")
    }

    /// The value as a decimal length: digits only, at most 18 of them.
    func decimalValue(in bytes: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var result = 0
        for index in value {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            result = result * 10 + Int(digit)
        }
        return result
    }

    func value(in bytes: UnsafeRawBufferPointer, equalsIgnoringCase lowercased: StaticString) -> Bool {
        Self.equalsIgnoringCase(bytes, value, lowercased)
    }

    /// Calls `body` with the range of each non-empty element of the comma-separated value, trimmed.
    func forEachListElement(in bytes: UnsafeRawBufferPointer, _ body: (Range<Int>) -> Void) {
        var elementStart = value.lowerBound
        for index in value.lowerBound...value.upperBound
        where index == value.upperBound || bytes[index] == UInt8(ascii: ",") {
            var lower = elementStart
            var upper = index
            while lower < upper, bytes[lower] == UInt8(ascii: " ") || bytes[lower] == UInt8(ascii: "\t") {
                lower += 1
            }
            while upper > lower, bytes[upper - 1] == UInt8(ascii: " ") || bytes[upper - 1] == UInt8(ascii: "\t") {
                upper -= 1
            }
            if lower < upper { body(lower..<upper) }
            elementStart = index + 1
        }
    }

    /// Whether the bytes in `range` spell `lowercased` in any letter case. `lowercased` holds only lowercase
    /// letters and `-`; OR-ing 0x20 maps an uppercase letter to its lowercase and leaves `-` as it is, and no
    /// other byte that a token or list element can hold maps onto either.
    static func equalsIgnoringCase(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: StaticString
    )
        -> Bool
    {
        guard range.count == lowercased.utf8CodeUnitCount else { return false }
        let expected = lowercased.utf8Start
        var offset = 0
        for index in range {
            guard bytes[index] | 0x20 == expected[offset] else { return false }
            offset += 1
        }
        return true
    }

    /// Whether two ranges of `bytes` hold the same text in any ASCII letter case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lhs: Range<Int>, _ rhs: Range<Int>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for offset in 0..<lhs.count {
            let left = bytes[lhs.lowerBound + offset]
            let right = bytes[rhs.lowerBound + offset]
            guard left == right || Self.lowercased(left) == Self.lowercased(right) else { return false }
        }
        return true
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// field-vchar, SP or HTAB (RFC 9110 §5.5), obs-text included: no control character, CR and LF among them.
    static func isFieldCharacter(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t")
    }
}
