import NIOCore
import NIOHTTP1

/// How a request's body ends (RFC 9112 §6.3): a request without either has none.
enum RequestFraming: Equatable {
    case contentLength(Int)
    case chunked
}

/// A request head parsed strictly, into NIOHTTP1's types, which the gate and the relay work on.
enum ClientRequestHead {
    /// Parses `bytes`, a whole head up to and including the empty line that ends it.
    ///
    /// request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3), one space each, nothing
    /// else: the method one llhttp knows (but CONNECT, which is not for a reverse proxy and which llhttp frames
    /// without a body), the target in origin-form or absolute-form and visible ASCII only (as llhttp's strict
    /// mode has it), the version 1.0 or 1.1.
    static func parse(
        _ bytes: UnsafeRawBufferPointer
    ) throws(ClientRequestError) -> (
        head: HTTPRequestHead, framing: RequestFraming
    ) {
        var index = 0
        while index < bytes.count, HeaderLine.isTokenCharacter(bytes[index]) { index += 1 }
        guard index > 0, index < bytes.count, bytes[index] == UInt8(ascii: " ") else { throw .badRequestLine }
        let method = HTTPMethod(
            rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<index]), as: UTF8.self))
        switch method {
        case .RAW, .CONNECT: throw .badRequestLine
        default: break
        }
        index += 1
        let targetStart = index
        while index < bytes.count, bytes[index] > 0x20, bytes[index] < 0x7F { index += 1 }
        guard index > targetStart, index < bytes.count, bytes[index] == UInt8(ascii: " "),
            isOriginOrAbsoluteForm(UnsafeRawBufferPointer(rebasing: bytes[targetStart..<index]))
        else { throw .badRequestLine }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<index]), as: UTF8.self)
        index += 1
        guard bytes.count >= index + 10, bytes[index..<(index + 7)].elementsEqual("HTTP/1.".utf8),
            bytes[index + 8] == UInt8(ascii: "\r"), bytes[index + 9] == UInt8(ascii: "\n")
        else { throw .badRequestLine }
        let version: HTTPVersion
        switch bytes[index + 7] {
        case UInt8(ascii: "1"): version = .http1_1
        case UInt8(ascii: "0"): version = .http1_0
        default: throw .badRequestLine
        }
        index += 10

        var headers = HTTPHeaders()
        // One allocation for the list in all but unusual requests, not one per doubling.
        headers.reserveCapacity(16)
        var framingFields = FramingFields()
        var hostLines = 0
        let fieldsEnd = bytes.count - 2
        while index < fieldsEnd {
            guard let line = HeaderLine(in: bytes, at: index), bytes[line.end - 3] != UInt8(ascii: "\t") else {
                // A tab ending a value: llhttp refuses it in a length, and takes `chunked<TAB>` as another coding.
                throw .badHeaderLine
            }
            index = line.end
            let name = line.knownName(in: bytes)
            // HTTP/1.0 has no transfer codings at all (RFC 9112 §6.1).
            guard name != .transferEncoding || version == .http1_1 else { throw .unsupportedTransferCoding }
            try framingFields.take(line, named: name, in: bytes, failing: ClientRequestError.self)
            if line.isHost(in: bytes) {
                // RFC 9112 §3.2: one Host, a host and an optional port. Two could route the request by one and
                // have it judged, logged or forwarded (X-Forwarded-Host) by the other.
                hostLines += 1
                guard hostLines == 1, line.hasHostValue(in: bytes) else { throw .badHost }
            }
            headers.add(name: line.nameString(in: bytes), value: line.valueString(in: bytes))
        }
        guard hostLines == 1 || version == .http1_0 else { throw .missingHost }
        let framing: RequestFraming
        if framingFields.chunked {
            // Both at once is how requests are smuggled past one of two parsers (RFC 9112 §6.3 ¶3): neither wins.
            guard framingFields.contentLength == nil else { throw .contentLengthWithTransferEncoding }
            framing = .chunked
        } else {
            framing = .contentLength(framingFields.contentLength ?? 0)
        }
        return (HTTPRequestHead(version: version, method: method, uri: target, headers: headers), framing)
    }

    /// A chunked body's trailer lines, each CRLF-terminated, checked.
    static func trailers(_ lines: ByteBuffer) throws(ClientRequestError) -> HTTPHeaders {
        try lines.withUnsafeReadableBytes { bytes throws(ClientRequestError) in try trailers(bytes) }
    }

    private static func trailers(_ bytes: UnsafeRawBufferPointer) throws(ClientRequestError) -> HTTPHeaders {
        var trailers = HTTPHeaders()
        var index = 0
        while index < bytes.count {
            // No framing or connection fields in trailers (RFC 9110 §6.5.1): llhttp refuses a length or a
            // coding there, and would close after a `Connection: close` that the head did not say.
            guard let line = HeaderLine(in: bytes, at: index), bytes[line.end - 3] != UInt8(ascii: "\t"),
                line.knownName(in: bytes) == nil
            else { throw .badHeaderLine }
            index = line.end
            trailers.add(name: line.nameString(in: bytes), value: line.valueString(in: bytes))
        }
        return trailers
    }
}

/// `/path?query`, or `scheme://host[:port]/path?query` with a scheme of letters, a host of letters, digits,
/// `.` and `-` (or an IPv6 literal in brackets) and a port of digits. The gate reduces absolute-form to its
/// path; anything else (asterisk-form, authority-form, userinfo, a scheme without `//`) llhttp refuses or
/// reads in ways the gate would not.
private func isOriginOrAbsoluteForm(_ target: UnsafeRawBufferPointer) -> Bool {
    if target.first == UInt8(ascii: "/") { return true }
    func isLetter(_ byte: UInt8) -> Bool { byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z") }
    var index = 0
    while index < target.count, isLetter(target[index]) { index += 1 }
    guard index > 0, target.count > index + 3, target[index] == UInt8(ascii: ":"),
        target[index + 1] == UInt8(ascii: "/"), target[index + 2] == UInt8(ascii: "/")
    else { return false }
    index += 3
    let hostStart = index
    if target[index] == UInt8(ascii: "[") {
        index += 1
        while index < target.count, target[index] != UInt8(ascii: "]") {
            let byte = target[index]
            guard HeaderLine.isHexDigit(byte) || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") else {
                return false
            }
            index += 1
        }
        guard index < target.count else { return false }
        index += 1
    } else {
        while index < target.count,
            HeaderLine.isAlphanumeric(target[index]) || target[index] == UInt8(ascii: ".")
                || target[index] == UInt8(ascii: "-")
        {
            index += 1
        }
        guard index > hostStart else { return false }
    }
    if index < target.count, target[index] == UInt8(ascii: ":") {
        index += 1
        while index < target.count, HeaderLine.isDigit(target[index]) { index += 1 }
    }
    return index == target.count || target[index] == UInt8(ascii: "/") || target[index] == UInt8(ascii: "?")
}

extension HeaderLine {
    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: false
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    func isHost(in bytes: UnsafeRawBufferPointer) -> Bool {
        name.count == 4 && Self.equalsIgnoringCase(bytes, name, "host")
    }

    /// Whether the value is `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): empty, an IP literal in
    /// brackets, or a reg-name (unreserved, percent-encoded and sub-delims characters), then digits after a
    /// colon. No `/`, `@`, `?`, `#`, `\` or space: nothing a URL built from it could be turned by.
    func hasHostValue(in bytes: UnsafeRawBufferPointer) -> Bool {
        var index = value.lowerBound
        let end = value.upperBound
        func isRegNameCharacter(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "!"),
                UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
                UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
                true
            default: Self.isAlphanumeric(byte)
            }
        }
        if index < end, bytes[index] == UInt8(ascii: "[") {
            // IPv6address or IPvFuture: hex digits, colons, dots, and IPvFuture's `v` and reg-name characters.
            index += 1
            let literalStart = index
            while index < end, bytes[index] != UInt8(ascii: "]") {
                guard isRegNameCharacter(bytes[index]) || bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
            }
            guard index < end, index > literalStart else { return false }
            index += 1
        } else {
            while index < end, bytes[index] != UInt8(ascii: ":") {
                if bytes[index] == UInt8(ascii: "%") {
                    guard index + 2 < end, Self.isHexDigit(bytes[index + 1]), Self.isHexDigit(bytes[index + 2]) else {
                        return false
                    }
                    index += 3
                    continue
                }
                guard isRegNameCharacter(bytes[index]) else { return false }
                index += 1
            }
        }
        guard index < end else { return true }
        guard bytes[index] == UInt8(ascii: ":") else { return false }
        index += 1
        while index < end, Self.isDigit(bytes[index]) { index += 1 }
        return index == end
    }

    func nameString(in bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[name]), as: UTF8.self)
    }

    /// The value as NIOHTTP1's decoder gives it: non-UTF-8 bytes (obs-text) repaired.
    func valueString(in bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value]), as: UTF8.self)
    }
}
