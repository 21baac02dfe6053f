import Foundation
import PortcullisTestSupport
import Testing

/// The end-to-end test tools checked against each other, without the proxy: when a proxy test fails, the
/// failure is the proxy's, not the echo server's or the raw client's.
@Suite struct TestSupportSelfTests {
    @Test func echoUpstreamReportsTheRequestExactly() async throws {
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let target = "/a/%2e%2E//b;p?q=a%20b&q=2&empty="
        let headers: [(name: String, value: String)] = [
            ("Host", "example.test"), ("x-lower", "1"), ("X-Repeat", "first"), ("x-repeat", "second"),
            ("X-Spaces", "  inner  spaces kept "), ("X-Empty", ""), ("X-UTF8", "caf\u{E9}"),
        ]
        let response = try await RawHTTPConnection.request(
            port: upstream.port, method: "POST", target: target, headers: headers, body: Array("hello".utf8))
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/json")
        let echoed = try #require(response.echoedRequest)
        #expect(echoed.method == "POST")
        #expect(echoed.target == target)
        #expect(echoed.version == "HTTP/1.1")
        // The request helper adds Connection before Content-Length.
        let expected = headers.map { [$0.name, $0.value] } + [["Connection", "close"], ["Content-Length", "5"]]
        #expect(echoed.headers.map { [$0.name, $0.value] } == expected.map { [$0[0], $0[1].trimmed] })
        #expect(echoed.headers(named: "X-REPEAT") == ["first", "second"])
        #expect(echoed.bodyLength == 5)
        #expect(echoed.bodySHA256 == sha256Hex(Array("hello".utf8)))
        #expect(echoed.connection == 1 && echoed.requestOnConnection == 1)
    }

    @Test func keepAliveReusesTheConnection() async throws {
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let connection = try await RawHTTPConnection.connect(port: upstream.port)
        defer { connection.close() }
        let first = try #require(try await connection.request(target: "/one").echoedRequest)
        let second = try #require(try await connection.request(target: "/two").echoedRequest)
        #expect(first.connection == second.connection)
        #expect(first.requestOnConnection == 1 && second.requestOnConnection == 2)
        let stats = try await upstream.stats()
        #expect(stats.connections == 1 && stats.requests == 2)

        let closing = try await connection.request(target: "/three", headers: [("Connection", "close")])
        #expect(closing.header("Connection") == "close")
        #expect(await connection.isClosedByPeer(within: 2))
    }

    @Test(arguments: [false, true]) func uploadHashMatches(chunked: Bool) async throws {
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let connection = try await RawHTTPConnection.connect(port: upstream.port)
        defer { connection.close() }
        let length = 1_000_000
        let framing = chunked ? ("Transfer-Encoding", "chunked") : ("Content-Length", String(length))
        try await connection.sendRequest(method: "PUT", target: "/upload", headers: [framing])
        let sent = try await connection.sendBody(length: length, chunked: chunked)
        #expect(sent == DeterministicBody.sha256Hex(length: length))
        let echoed = try #require(try await connection.readResponse().echoedRequest)
        #expect(echoed.bodyLength == length)
        #expect(echoed.bodySHA256 == sent)
    }

    @Test func expectContinueComesBackAsItsOwnResponse() async throws {
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let connection = try await RawHTTPConnection.connect(port: upstream.port)
        defer { connection.close() }
        try await connection.sendRequest(
            method: "POST", target: "/continue", headers: [("Content-Length", "1000"), ("Expect", "100-continue")])
        let interim = try await connection.readResponse(requestMethod: "POST")
        #expect(interim.status == 100 && interim.framing == .none)
        try await connection.sendBody(length: 1000, chunked: false)
        let final = try await connection.readResponse(requestMethod: "POST")
        #expect(final.status == 200 && final.echoedRequest?.bodyLength == 1000)
    }

    @Test(arguments: [false, true]) func downloadHashMatches(chunked: Bool) async throws {
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let length = 5_000_000
        let response = try await RawHTTPConnection.request(
            port: upstream.port, target: "/bytes/\(length)\(chunked ? "?chunked=1" : "")", hashBody: true)
        #expect(response.status == 200)
        #expect(response.framing == (chunked ? .chunked : .contentLength(length)))
        #expect(response.body.isEmpty)
        #expect(response.bodyLength == length)
        #expect(response.bodySHA256 == response.header("X-Body-SHA256"))
        #expect(response.bodySHA256 == DeterministicBody.sha256Hex(length: length))

        let small = try await RawHTTPConnection.request(port: upstream.port, target: "/bytes/300")
        #expect(small.body == DeterministicBody.bytes(count: 300))
    }

    @Test func statusHopHeadAndDropRoutes() async throws {
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let unauthorized = try await RawHTTPConnection.request(port: upstream.port, target: "/status/401")
        #expect(unauthorized.status == 401)
        #expect(unauthorized.header("WWW-Authenticate") == "Basic realm=\"upstream\"")
        #expect(unauthorized.json == ["status": 401])

        let hop = try await RawHTTPConnection.request(port: upstream.port, target: "/hop")
        #expect(hop.headers(named: "Connection") == ["X-Upstream-Hop", "close"])
        #expect(hop.header("X-Upstream-Hop") == "1" && hop.header("Keep-Alive") == "timeout=5")
        #expect(hop.header("X-Kept") == "yes")

        let head = try await RawHTTPConnection.request(port: upstream.port, method: "HEAD", target: "/bytes/100")
        #expect(head.framing == .none && head.header("Content-Length") == "100" && head.body.isEmpty)

        let oldClient = try await RawHTTPConnection.connect(port: upstream.port)
        defer { oldClient.close() }
        try await oldClient.send("GET /bytes/3 HTTP/1.0\r\n\r\n")
        let everything = try await oldClient.readUntilClosed(timeout: 5)
        #expect(everything.suffix(3) == ArraySlice(DeterministicBody.bytes(count: 3)))

        let connection = try await RawHTTPConnection.connect(port: upstream.port)
        defer { connection.close() }
        try await connection.sendRequest(target: "/drop")
        await #expect(throws: RawHTTPError.closedByPeer(during: "waiting for a response")) {
            try await connection.readResponse()
        }
        #expect(await connection.isClosedByPeer(within: 1))
    }

    @Test func webSocketEchoes() async throws {
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let connection = try await RawHTTPConnection.connect(port: upstream.port)
        defer { connection.close() }
        let handshake = try await connection.upgradeToWebSocket(headers: [("X-Postgres-Role", "reader")])
        #expect(handshake.status == 101)
        #expect(handshake.header("X-Upstream-Saw-Role") == "reader")

        func frame(_ opcode: UInt8, _ payload: [UInt8]) -> WebSocketFrame {
            WebSocketFrame(opcode: opcode, payload: payload)
        }
        try await connection.sendWebSocketText("hello")
        #expect(try await connection.readWebSocketFrame() == frame(WebSocketOpcode.text, Array("hello".utf8)))
        let large = DeterministicBody.bytes(count: 70_000)  // the 64-bit length form
        try await connection.sendWebSocketFrame(opcode: WebSocketOpcode.binary, payload: large)
        #expect(try await connection.readWebSocketFrame() == frame(WebSocketOpcode.binary, large))
        try await connection.sendWebSocketFrame(opcode: WebSocketOpcode.ping, payload: [1, 2])
        #expect(try await connection.readWebSocketFrame() == frame(WebSocketOpcode.pong, [1, 2]))
        try await connection.sendWebSocketFrame(opcode: WebSocketOpcode.close, payload: [0x03, 0xE8])
        #expect(try await connection.readWebSocketFrame() == frame(WebSocketOpcode.close, [0x03, 0xE8]))
        #expect(await connection.isClosedByPeer(within: 2))
    }

    @Test(.enabled(if: NginxUpstream.isAvailable)) func nginxAnswersWhatItSaw() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-static-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try "static text".write(to: root.appendingPathComponent("file.txt"), atomically: true, encoding: .utf8)
        let nginx = try await NginxUpstream.start(root: root)
        defer { nginx.stop() }

        let response = try await RawHTTPConnection.request(
            port: nginx.port, target: "/x?y=1", headers: [("X-Postgres-Role", "alice"), ("X-User-Id", "42")])
        #expect(response.status == 200)
        #expect(response.bodyText == "role=alice user=42 host=127.0.0.1:\(nginx.port) uri=/x?y=1")
        let file = try await RawHTTPConnection.request(port: nginx.port, target: "/static/file.txt")
        #expect(file.bodyText == "static text")
    }
}

extension String {
    /// Without leading and trailing spaces, as an HTTP field value is read.
    fileprivate var trimmed: String {
        trimmingCharacters(in: .whitespaces)
    }
}
