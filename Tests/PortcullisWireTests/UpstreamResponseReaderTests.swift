import NIOCore
import Testing

@testable import PortcullisWire

/// The upstream's responses read from bytes: the head the client receives, the framing, and every shape that
/// could make the proxy and a client read a response two ways, refused.
@Suite("Unit: UpstreamResponseReader")
struct UpstreamResponseReaderTests {
    /// What the reader made of a byte stream, as text: `head <status> <framing> keep|close`, then the forwarded
    /// head verbatim, `body <bytes>` (consecutive bodies joined), `end`, `end trailers <lines>`.
    struct Reading: Equatable, CustomStringConvertible {
        var events: [String] = []
        var leftover = ""
        var description: String { events.joined(separator: " | ") + (leftover.isEmpty ? "" : " || \(leftover)") }
    }

    /// Feeds `pieces` one read at a time, then the end of the stream when `closes`.
    static func read(_ pieces: [String], toHEAD: Bool = false, closes: Bool = false) throws -> Reading {
        var reader = UpstreamResponseReader(maxHeadBytes: 1024)
        reader.expectResponse(toHEAD: toHEAD)
        var reading = Reading()
        var buffer = ByteBuffer()
        func record(_ event: UpstreamResponseReader.Event) {
            switch event {
            case .head(let head):
                reading.events.append(
                    "head \(head.status) \(head.framing) \(head.keepsAlive ? "keep" : "close")")
                reading.events.append(String(buffer: head.forwarded))
            case .body(let body):
                if let last = reading.events.last, last.hasPrefix("body ") {
                    reading.events[reading.events.count - 1] = last + String(buffer: body)
                } else {
                    reading.events.append("body " + String(buffer: body))
                }
            case .end(let trailers):
                reading.events.append(trailers.map { "end trailers " + String(buffer: $0) } ?? "end")
            }
        }
        for piece in pieces {
            buffer.writeString(piece)
            while let event = try reader.read(&buffer, allocator: ByteBufferAllocator()) { record(event) }
        }
        if closes, let event = try reader.readEndOfStream(leftover: buffer) { record(event) }
        reading.leftover = String(buffer: buffer)
        return reading
    }

    static func read(_ bytes: String, toHEAD: Bool = false, closes: Bool = false) throws -> Reading {
        try read([bytes], toHEAD: toHEAD, closes: closes)
    }

    static func refusal(_ bytes: String, closes: Bool = false) -> UpstreamResponseError? {
        do {
            _ = try read(bytes, closes: closes)
            return nil
        } catch {
            return error as? UpstreamResponseError
        }
    }

    // MARK: The client's head

    @Test("hop-by-hop and Connection-named headers go; Set-Cookie and Content-Length always stay; HTTP/1.1 out")
    func hopByHopRemoved() throws {
        let reading = try Self.read(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1; Path=/\r\n"
                + "Set-Cookie: b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\nContent-Length: 5\r\n"
                + "Keep-Alive: timeout=5\r\nConnection: close, X-Internal, Set-Cookie, Content-Length\r\n"
                + "X-Internal: secret\r\nUpgrade: h2c\r\nProxy-Authorization: x\r\nTE: trailers\r\n"
                + "Trailer: X-T\r\nProxy-Connection: keep-alive\r\n\r\nhello")
        #expect(
            reading.events == [
                "head 200 contentLength(5) close",
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1; Path=/\r\n"
                    + "Set-Cookie: b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\nContent-Length: 5\r\n",
                "body hello", "end",
            ])
    }

    @Test("a keep-alive response loses only Connection, in any case; the rest passes byte for byte, in order")
    func keepAliveResponse() throws {
        let reading = try Self.read(
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 23 Nov 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\n"
                + "Content-Length: 3\r\nCONNECTION: Keep-Alive\r\nX-Te: kept\r\nTE-x: kept\r\nx-odd:  spaced \t\r\n\r\nok\n"
        )
        #expect(
            reading.events == [
                "head 200 contentLength(3) keep",
                "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 23 Nov 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\n"
                    + "Content-Length: 3\r\nX-Te: kept\r\nTE-x: kept\r\nx-odd:  spaced \t\r\n",
                "body ok\n", "end",
            ])
    }

    @Test("a header named by Connection goes wherever it stands, before or after it, in any case")
    func connectionNamedHeader() throws {
        let reading = try Self.read(
            "HTTP/1.1 204 No Content\r\nx-internal: secret\r\nConnection:  X-Internal ,keep-alive\r\n"
                + "X-INTERNAL: again\r\nX-Other: kept\r\n\r\n")
        #expect(reading.events == ["head 204 none keep", "HTTP/1.1 204 No Content\r\nX-Other: kept\r\n", "end"])
    }

    @Test("101 Switching Protocols passes unchanged, Upgrade and Connection included; what follows is not HTTP")
    func switchingProtocols() throws {
        let reading = try Self.read(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\u{81}\u{05}hello")
        #expect(
            reading.events == [
                "head 101 none keep",
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                "end",
            ])
        #expect(reading.leftover == "\u{81}\u{05}hello")
    }

    @Test("a status line without a reason, or with an empty one, is taken as written")
    func statusLineWithoutReason() throws {
        #expect(
            try Self.read("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").events[1]
                == "HTTP/1.1 200\r\nContent-Length: 0\r\n")
        #expect(
            try Self.read("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n").events[1]
                == "HTTP/1.1 404 \r\nContent-Length: 0\r\n")
    }

    // MARK: Framing

    @Test("interim responses come before the final one, each a head of its own")
    func interimResponses() throws {
        let reading = try Self.read(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                + "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        #expect(
            reading.events == [
                "head 100 none keep", "HTTP/1.1 100 Continue\r\n", "head 103 none keep",
                "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n", "head 201 contentLength(2) keep",
                "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n", "body ok", "end",
            ])
    }

    @Test("chunked: the data without the framing, extensions ignored, trailers passed on")
    func chunkedBody() throws {
        let reading = try Self.read(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5;name=value\r\nhello\r\n1A\r\n"
                + String(repeating: "z", count: 26) + "\r\n0\r\nX-Checksum: abc\r\nX-More: d\r\n\r\n")
        #expect(
            reading.events == [
                "head 200 chunked keep", "HTTP/1.1 200 OK\r\n", "body hello" + String(repeating: "z", count: 26),
                "end trailers X-Checksum: abc\r\nX-More: d\r\n",
            ])
        let plain = try Self.read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        #expect(plain.events == ["head 200 chunked keep", "HTTP/1.1 200 OK\r\n", "end"])
    }

    @Test("no length and not chunked: the body lasts until the upstream closes, and the connection is not reused")
    func untilClose() throws {
        let reading = try Self.read(["HTTP/1.1 200 OK\r\n\r\nsome", " more"], closes: true)
        #expect(reading.events == ["head 200 untilClose close", "HTTP/1.1 200 OK\r\n", "body some more", "end"])
    }

    @Test("HEAD, 204 and 304 have no body whatever their head says; the next response follows at once")
    func bodilessResponses() throws {
        let head = try Self.read(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            toHEAD: true)
        #expect(
            head.events == [
                "head 200 none keep", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", "end", "head 200 none keep",
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "end",
            ])
        for status in ["204 No Content", "304 Not Modified"] {
            let reading = try Self.read("HTTP/1.1 \(status)\r\nTransfer-Encoding: chunked\r\n\r\n")
            #expect(reading.events == ["head \(status.prefix(3)) none keep", "HTTP/1.1 \(status)\r\n", "end"])
        }
    }

    @Test("whether the upstream keeps the connection: HTTP/1.1 unless close; HTTP/1.0 only with keep-alive")
    func keepsAlive() throws {
        func keeps(_ version: String, _ connection: String?) throws -> Bool {
            let line = connection.map { "Connection: \($0)\r\n" } ?? ""
            return try Self.read("\(version) 200 OK\r\n\(line)Content-Length: 0\r\n\r\n").events[0].hasSuffix("keep")
        }
        #expect(try keeps("HTTP/1.1", nil))
        #expect(try !keeps("HTTP/1.1", "close"))
        #expect(try !keeps("HTTP/1.1", "x-a, Close"))
        #expect(try !keeps("HTTP/1.0", nil))
        #expect(try keeps("HTTP/1.0", "Keep-Alive"))
    }

    @Test("a response split anywhere reads the same as in one piece")
    func splitAnywhere() throws {
        let samples = [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloHTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ]
        for sample in samples {
            let whole = try Self.read(sample)
            for split in ReadSplits.of(sample) {
                #expect(try Self.read(split.pieces) == whole, "\(split.label)")
            }
        }
    }

    @Test("an upstream closing between responses is no error; closing mid-head or mid-body is")
    func truncation() throws {
        #expect(try Self.read("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", closes: true).events.last == "end")
        #expect(Self.refusal("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", closes: true) == .truncated)
        #expect(Self.refusal("HTTP/1.1 200 OK\r\nContent-Le", closes: true) == .truncated)
        #expect(
            Self.refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", closes: true) == .truncated)
    }

    // MARK: Attacks

    @Test("response smuggling: Content-Length with Transfer-Encoding is refused, whichever comes first")
    func responseSmugglingLengthAndChunked() {
        #expect(
            Self.refusal("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                == .contentLengthWithTransferEncoding)
        #expect(
            Self.refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n")
                == .contentLengthWithTransferEncoding)
    }

    @Test("response smuggling: two lengths, a list of lengths, or a length that is not digits are refused")
    func responseSmugglingAmbiguousLength() {
        for lengths in [
            "Content-Length: 3\r\nContent-Length: 4", "Content-Length: 3\r\ncontent-length: 3", "Content-Length: 3, 3",
            "Content-Length: +3", "Content-Length: -1", "Content-Length: 0x10", "Content-Length: 1 2",
            "Content-Length: ", "Content-Length: 9999999999999999999",
        ] {
            #expect(Self.refusal("HTTP/1.1 200 OK\r\n\(lengths)\r\n\r\n") == .badContentLength, "\(lengths)")
        }
    }

    @Test("response smuggling: a coding other than chunked, a list, or chunked twice is refused")
    func responseSmugglingTransferCodings() {
        for codings in [
            "Transfer-Encoding: gzip", "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: chunked, identity",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Transfer-Encoding: xchunked",
        ] {
            #expect(Self.refusal("HTTP/1.1 200 OK\r\n\(codings)\r\n\r\n0\r\n\r\n") == .unsupportedTransferCoding)
        }
    }

    @Test("header injection: obs-fold, a space before the colon, bare LF or CR, NUL and DEL are refused")
    func headerInjectionShapes() {
        for line in [
            "X-A: b\r\n continued", "X-A : b", "X-A\t: b", ": empty-name", "X A: b", "X-A: b\nX-B: c",
            "X-A: b\rX-B: c", "X-A: b\u{0}c", "X-A: b\u{7F}", "X-A", "X-A: b\r\n\tfolded",
        ] {
            #expect(
                Self.refusal("HTTP/1.1 200 OK\r\n\(line)\r\nContent-Length: 0\r\n\r\n") == .badHeaderLine,
                "\(line.debugDescription)")
        }
        // Lines ended by a bare LF are refused as soon as one arrives, not waited on for a CRLF.
        #expect(Self.refusal("HTTP/1.1 200 OK\nContent-Length: 0\n\n") == .badHeaderLine)
    }

    @Test("a status line that is not HTTP/1.0 or 1.1 with a three-digit status of 100-599 is refused")
    func badStatusLines() {
        for line in [
            "HTTP/2 200 OK", "HTTP/1.2 200 OK", "http/1.1 200 OK", "HTTP/1.1 99 OK", "HTTP/1.1 600 OK",
            "HTTP/1.1 2000 OK", "HTTP/1.1 20x OK", "HTTP/1.1  200 OK", "HTTP/1.1 200 O\u{1}K", "ICY 200 OK",
            "HTTP/1.1 200OK",
        ] {
            #expect(Self.refusal("\(line)\r\nContent-Length: 0\r\n\r\n") == .badStatusLine, "\(line.debugDescription)")
        }
    }

    @Test("chunk framing: bad sizes, overflowing sizes, data not ended by CRLF, bad trailers are refused")
    func badChunks() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        for body in [
            "g\r\n", "\r\n", " 5\r\nhello\r\n", "5 \r\nhello\r\n", "-5\r\n", "5\nhello\r\n", "5\r\nhelloX\r\n",
            "5\r\nhello\n0\r\n\r\n", "1000000000000000\r\n", "5;\u{1}\r\nhello\r\n",
        ] {
            #expect(Self.refusal(head + body) == .badChunk, "\(body.debugDescription)")
        }
        #expect(Self.refusal(head + "0\r\nX-A : b\r\n\r\n") == .badHeaderLine)
    }

    @Test("a head or trailer section over the limit is refused before it ends, not buffered without bound")
    func headTooLarge() {
        let long = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: 2000)
        #expect(Self.refusal(long) == .headTooLarge)
        #expect(Self.refusal(long + "\r\n\r\n") == .headTooLarge)
        let trailers =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: " + String(repeating: "a", count: 2000)
        #expect(Self.refusal(trailers) == .headTooLarge)
    }

    // MARK: Bytes out

    @Test("chunk-size lines are lowercase hex without leading zeros")
    func chunkSizeLines() {
        for (size, line) in [(1, "1\r\n"), (15, "f\r\n"), (16, "10\r\n"), (255, "ff\r\n"), (65_536, "10000\r\n")] {
            #expect(String(buffer: ChunkedFraming.chunkSize(size, allocator: ByteBufferAllocator())) == line)
        }
    }
}
