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
        var framingFields = FramingFields()
        var close = false
        var keepAlive = false
        /// Header names `Connection` lists beyond the fixed hop-by-hop ones: rare, so allocated only then.
        var named: [Range<Int>] = []
        index = fieldsStart
        while index < fieldsEnd {
            guard let line = HeaderLine(in: bytes, at: index) else { throw .badHeaderLine }
            index = line.end
            let name = line.knownName(in: bytes)
            // A coding the proxy cannot undo, or a list, would reach the client as a body it could not read.
            try framingFields.take(line, named: name, in: bytes, failing: UpstreamResponseError.self)
            switch name {
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
            case .contentLength, .transferEncoding, .otherHopByHop, nil:
                break
            }
        }

        let hasNoBody = requestIsHEAD || status < 200 || status == 204 || status == 304
        if hasNoBody {
            framing = .none
        } else if framingFields.chunked {
            // RFC 9112 §6.1 lets a recipient drop the length and go by the coding; both at once is how
            // responses are smuggled past one of two parsers, so neither wins.
            guard framingFields.contentLength == nil else { throw .contentLengthWithTransferEncoding }
            framing = .chunked
        } else if let contentLength = framingFields.contentLength {
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
            guard let line = HeaderLine(in: bytes, at: index) else { throw .badHeaderLine }
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
