import NIOCore
import NIOHTTP1
import Testing

@testable import PortcullisWire

/// The client's requests read from bytes: heads into NIOHTTP1's types, bodies by their framing, and every shape
/// that could make the proxy and the upstream frame a request two ways (request smuggling), refused.
@Suite("Unit: ClientRequestReader")
struct ClientRequestReaderTests {
    /// What the reader made of a byte stream, as text: `GET /target HTTP/1.1 [name: value, …]`, `body <bytes>`
    /// (consecutive bodies joined), `end`, `end [trailers]`; then what is left unread after `||`.
    static func read(_ pieces: [String], maxHeadBytes: Int = 1024) throws(ClientRequestError) -> String {
        var reader = ClientRequestReader(maxHeadBytes: maxHeadBytes)
        var events: [String] = []
        var buffer = ByteBuffer()
        for piece in pieces {
            buffer.writeString(piece)
            while let part = try reader.read(&buffer) {
                switch part {
                case .head(let head):
                    let headers = head.headers.map { "\($0.name): \($0.value)" }.joined(separator: ", ")
                    events.append("\(head.method.rawValue) \(head.uri) \(head.version) [\(headers)]")
                case .body(let body):
                    if let last = events.last, last.hasPrefix("body ") {
                        events[events.count - 1] = last + String(buffer: body)
                    } else {
                        events.append("body " + String(buffer: body))
                    }
                case .end(let trailers):
                    events.append(
                        trailers.map { "end [" + $0.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]" }
                            ?? "end")
                }
            }
        }
        let leftover = String(buffer: buffer)
        return events.joined(separator: " | ") + (leftover.isEmpty ? "" : " || " + leftover)
    }

    static func read(_ bytes: String) throws(ClientRequestError) -> String {
        try read([bytes])
    }

    static func refusal(_ bytes: String) -> ClientRequestError? {
        do {
            _ = try read(bytes)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Reading

    @Test("a head without a body ends at once; names, values and the target are kept as sent")
    func headWithoutBody() throws {
        #expect(
            try Self.read("GET /items?select=*&name=eq.a%20b HTTP/1.1\r\nHost: x\r\nX-Custom:  padded value  \r\n\r\n")
                == "GET /items?select=*&name=eq.a%20b HTTP/1.1 [Host: x, X-Custom: padded value] | end")
    }

    @Test("a Content-Length body, then a pipelined request in the same bytes")
    func contentLengthThenPipelined() throws {
        #expect(
            try Self.read("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.0\r\n\r\n")
                == "POST /a HTTP/1.1 [Host: x, Content-Length: 5] | body hello | end | GET /b HTTP/1.0 [] | end")
    }

    @Test("a chunked body: extensions ignored, data joined, trailers returned")
    func chunked() throws {
        #expect(
            try Self.read(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5;name=value;flag\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
            )
                == "POST / HTTP/1.1 [Host: x, Transfer-Encoding: Chunked] | body hello world | end [X-T: 1]")
        #expect(
            try Self.read(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n")
                == "POST / HTTP/1.1 [Host: x, Transfer-Encoding: chunked] | body 0123456789 | end")
    }

    @Test("reads split at every byte, or one byte at a time, give the same parts as one read")
    func splitInvariance() throws {
        let samples = [
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
            "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nX-T: y\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        for sample in samples {
            let whole = try Self.read(sample)
            for split in ReadSplits.of(sample) {
                #expect(try Self.read(split.pieces) == whole, "\(split.label)")
            }
        }
    }

    @Test("empty lines before a request line are skipped (RFC 9112 §2.2)")
    func leadingEmptyLines() throws {
        #expect(try Self.read("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n") == "GET / HTTP/1.1 [Host: x] | end")
    }

    @Test("origin-form and absolute-form targets are read (the gate decides what they mean); no other form")
    func targets() throws {
        #expect(
            try Self.read("GET http://evil.example:80/x HTTP/1.1\r\nHost: x\r\n\r\n")
                == "GET http://evil.example:80/x HTTP/1.1 [Host: x] | end")
        #expect(
            try Self.read("GET HTTPS://[::1]?q HTTP/1.1\r\nHost: x\r\n\r\n")
                == "GET HTTPS://[::1]?q HTTP/1.1 [Host: x] | end")
        // Asterisk-form, authority-form, a scheme without `//`, an odd host, CONNECT: llhttp refuses some of
        // these, or frames them differently (CONNECT has no body for it), and a reverse proxy wants none.
        for line in [
            "OPTIONS * HTTP/1.1", "GET example.com:80 HTTP/1.1", "GET http:/x HTTP/1.1", "GET http://a{b}/ HTTP/1.1",
            "GET http://user@a/ HTTP/1.1", "OPTIONS # HTTP/1.1", "CONNECT a:443 HTTP/1.1",
        ] {
            #expect(Self.refusal("\(line)\r\nContent-Length: 2\r\n\r\nok") == .badRequestLine, "\(line)")
        }
        // Only visible ASCII (llhttp's strict mode): a raw UTF-8 byte would be repaired into a different target.
        #expect(Self.refusal("GET /p?name=José HTTP/1.1\r\nHost: x\r\n\r\n") == .badRequestLine)
    }

    @Test("an incomplete head waits; the bytes stay in the buffer")
    func incomplete() throws {
        #expect(try Self.read("GET / HTTP/1.1\r\nHost: x\r\n") == " || GET / HTTP/1.1\r\nHost: x\r\n")
        #expect(
            try Self.read("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
                == "POST / HTTP/1.1 [Host: x, Content-Length: 10] | body abc")
    }

    // MARK: Request smuggling, refused

    @Test("Content-Length with Transfer-Encoding (CL.TE and TE.CL smuggling)")
    func smugglingByContentLengthAndTransferEncoding() {
        #expect(
            Self.refusal(
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                == .contentLengthWithTransferEncoding)
        #expect(
            Self.refusal(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n")
                == .contentLengthWithTransferEncoding)
    }

    @Test("repeated, listed, signed, spaced or huge Content-Length (CL.CL smuggling)")
    func smugglingByAmbiguousLength() {
        for value in [
            "5\r\nContent-Length: 5", "5\r\nContent-Length: 6", "5, 5", "+5", "-1", "0x5", "5 5", "",
            "1234567890123456789",
        ] {
            #expect(
                Self.refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(value)\r\n\r\nhello")
                    == .badContentLength,
                "\(value)")
        }
    }

    @Test("any transfer coding but a single chunked, and any coding in HTTP/1.0 (TE.TE smuggling)")
    func smugglingByTransferCodings() {
        for value in [
            "gzip", "gzip, chunked", "chunked, chunked", "identity", "xchunked",
            "chunked\r\nTransfer-Encoding: chunked",
        ] {
            #expect(
                Self.refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(value)\r\n\r\n0\r\n\r\n")
                    == .unsupportedTransferCoding,
                "\(value)")
        }
        #expect(
            Self.refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == .unsupportedTransferCoding
        )
    }

    @Test("header injection: obs-fold, space before the colon, bare LF or CR, NUL, DEL, empty name")
    func headerInjection() {
        for line in [
            "X-A: 1\r\n folded", "Transfer-Encoding : chunked", "X-A: 1\nX-B: 2", "X-A: 1\rX-B: 2", "X-A: a\u{0}b",
            "X-A: a\u{7F}b", ": empty", "X A: 1", "X-A", "Content-Length: 2\t", "Transfer-Encoding: chunked\t",
        ] {
            #expect(Self.refusal("GET / HTTP/1.1\r\nHost: x\r\n\(line)\r\n\r\n") == .badHeaderLine, "\(line)")
        }
        #expect(Self.refusal("GET / HTTP/1.1\nHost: x\n\n") == .badHeaderLine)
    }

    @Test("Host (RFC 9112 §3.2): one in HTTP/1.1, never two, and a host with an optional port")
    func host() throws {
        #expect(Self.refusal("GET / HTTP/1.1\r\n\r\n") == .missingHost)
        #expect(Self.refusal("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n") == .missingHost)
        #expect(try Self.read("GET / HTTP/1.0\r\n\r\n") == "GET / HTTP/1.0 [] | end")
        // Two, even alike: one could route the request and the other be judged, logged or forwarded.
        for pair in ["Host: a\r\nHost: a", "Host: a\r\nhost: b", "HOST: a\r\nX-A: 1\r\nHost: b"] {
            #expect(Self.refusal("GET / HTTP/1.1\r\n\(pair)\r\n\r\n") == .badHost, "\(pair)")
            #expect(Self.refusal("GET / HTTP/1.0\r\n\(pair)\r\n\r\n") == .badHost, "\(pair)")
        }
        for value in [
            "", "example.com", "Example.COM:8080", "127.0.0.1:80", "[::1]", "[::1]:443", "[v1.fe80::a+en1]", "a_b~c",
            "xn--bcher-kva.example", "a%20b", "h:", "sub-delims!$&'()*+,;=",
        ] {
            #expect(
                try Self.read("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n") == "GET / HTTP/1.1 [Host: \(value)] | end")
        }
        for value in [
            "a/b", "evil.example/reset?", "user@a", "a?b", "a#b", "a\\b", "a b", "a\"b", "a<b>", "[::1", "[]",
            "[::1]x", "[::/1]", "a:80x", "a:b", "a:-1", "%zz", "a%2", "a%", ":80:81", "é.example",
        ] {
            #expect(Self.refusal("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n") == .badHost, "\(value)")
        }
    }

    @Test("request lines: unknown methods, extra spaces, control characters in the target, other versions")
    func badRequestLines() {
        for line in [
            "FOO / HTTP/1.1", "get / HTTP/1.1", "GET  / HTTP/1.1", "GET / HTTP/1.1 ", "GET /a b HTTP/1.1",
            "GET /\u{7F} HTTP/1.1", "GET / HTTP/2.0", "GET / HTTP/1.2", "GET / http/1.1", "GET /", " GET / HTTP/1.1",
            "GET / HTTP/1.1x",
        ] {
            #expect(Self.refusal("\(line)\r\n\r\n") == .badRequestLine, "\(line)")
        }
        // A target that is not UTF-8 would reach the upstream repaired, so different from what was judged.
        var bytes = ByteBuffer(string: "GET /\u{FF} HTTP/1.1\r\nHost: x\r\n\r\n")
        bytes.setInteger(UInt8(0xFF), at: 5)
        var reader = ClientRequestReader(maxHeadBytes: 1024)
        #expect(throws: ClientRequestError.badRequestLine) { try reader.read(&bytes) }
    }

    @Test("bad chunk framing: no size, a sign, too many digits, a missing CRLF after the data, a bad extension")
    func badChunks() {
        for body in [
            "\r\n", "+5\r\nhello\r\n0\r\n\r\n", "1000000000000000\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n",
            "5;\u{1}\r\n",
            // Extensions in llhttp's strict grammar only: `;name[=value]`, tokens, no whitespace.
            "5;a b\r\n", "5; a=1\r\n", "5;a=\r\n", "5;;a\r\n", "5;=1\r\n", "5;a=\"q\"\r\n",
        ] {
            #expect(
                Self.refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(body)") == .badChunk,
                "\(body)")
        }
        // Trailers never frame, nor close: no length, coding or connection field there.
        for trailer in ["Content-Length: 5", "Transfer-Encoding: chunked", "Connection: close", "X-T: 1\t"] {
            #expect(
                Self.refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\(trailer)\r\n\r\n")
                    == .badHeaderLine, "\(trailer)")
        }
    }

    @Test("a head or trailer section over the limit, complete or not, is refused")
    func headTooLarge() {
        let large = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 2000) + "\r\n\r\n"
        #expect(throws: ClientRequestError.headTooLarge) { try Self.read([large]) }
        #expect(throws: ClientRequestError.headTooLarge) { try Self.read([String(large.dropLast(4))]) }
        let trailers =
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: "
            + String(repeating: "a", count: 2000)
        #expect(throws: ClientRequestError.headTooLarge) { try Self.read([trailers]) }
    }
}

/// The eight-bytes-at-once tests the head loops skip ahead with: a false answer must mean no such byte, or a
/// control character or a line end would be skipped unchecked.
@Suite("Unit: SWAR byte tests")
struct SWARTests {
    static func word(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    @Test("every byte value, at every position, among ordinary bytes: exact")
    func everyByteAtEveryPosition() {
        for value in 0...255 {
            for position in 0..<8 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                bytes[position] = UInt8(value)
                let word = Self.word(bytes)
                #expect(
                    SWAR.hasByteBelowSpaceOrDelete(word) == (value < 0x20 || value == 0x7F), "\(value) at \(position)")
                #expect(SWAR.hasByte(word, UInt8(ascii: "\n")) == (value == 0x0A), "\(value) at \(position)")
            }
        }
    }

    @Test("random words: never a false 'none'")
    func noFalseNegatives() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let bytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let word = Self.word(bytes)
            if bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) { #expect(SWAR.hasByteBelowSpaceOrDelete(word)) }
            if bytes.contains(0x0A) { #expect(SWAR.hasByte(word, 0x0A)) }
        }
    }
}
