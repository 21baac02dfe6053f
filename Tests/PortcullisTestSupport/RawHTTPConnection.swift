import Foundation

/// A hand-driven HTTP/1.1 client connection for end-to-end tests: it sends exactly the bytes it is given and
/// reports exactly what comes back, so tests can exercise framing, keep-alive, pipelining, early closes and
/// WebSocket upgrades that a real client library would smooth over.
///
/// Every blocking call runs on the connection's own thread, never on Swift concurrency's cooperative pool;
/// the `async` methods only wait for it. Calls run one at a time in the order they were made, and each wait
/// for the peer is bounded by the `timeout` given to `connect` (idle time: a 50 MB body that keeps flowing
/// never times out).
///
/// ```swift
/// let connection = try await RawHTTPConnection.connect(port: proxy.port)
/// defer { connection.close() }
/// try await connection.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
/// let response = try await connection.readResponse()
/// ```
public final class RawHTTPConnection: @unchecked Sendable {
    // @unchecked: the socket's buffer is only used by jobs on `thread`, which run one at a time; closing goes
    // through the socket's own lock.
    public let host: String
    public let port: Int
    private let socket: BlockingSocket
    private let thread: DedicatedThread

    private init(host: String, port: Int, socket: BlockingSocket, thread: DedicatedThread) {
        self.host = host
        self.port = port
        self.socket = socket
        self.thread = thread
    }

    deinit {
        close()
    }

    /// Connects to `host:port`. `timeout` (seconds) bounds the connect and every later wait for the peer.
    public static func connect(
        port: Int, host: String = "127.0.0.1", timeout: Double = 30
    ) async throws
        -> RawHTTPConnection
    {
        let thread = DedicatedThread(name: "RawHTTPConnection \(host):\(port)")
        do {
            let socket = try await thread.run { try BlockingSocket.connect(host: host, port: port, timeout: timeout) }
            return RawHTTPConnection(host: host, port: port, socket: socket, thread: thread)
        } catch {
            thread.finish()
            throw error
        }
    }

    /// Closes the connection at once, also interrupting a call still waiting on it (that call then fails).
    /// Safe to call more than once, and from anywhere.
    public func close() {
        socket.interrupt()
        // The descriptor is closed on the thread, after any call still using it has returned, so its number
        // cannot be reused under that call.
        thread.finish { [socket] in socket.close() }
    }

    /// Runs `body` on the connection's thread; cancelling the task closes the connection.
    func onThread<T: Sendable>(_ body: @escaping @Sendable (BlockingSocket) throws -> T) async throws -> T {
        let socket = socket
        return try await withTaskCancellationHandler {
            try await thread.run { try body(socket) }
        } onCancel: {
            socket.interrupt()
        }
    }

    // MARK: Sending

    public func send(_ bytes: [UInt8]) async throws {
        try await onThread { try $0.sendAll(bytes, what: "\(bytes.count) bytes") }
    }

    public func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    /// Half-closes the connection: the peer reads end-of-stream and can still answer.
    public func shutdownWrite() async throws {
        try await onThread { try $0.shutdownWrite() }
    }

    /// Sends a body of `length` bytes of `DeterministicBody` in 64 KiB pieces, raw or in chunked coding
    /// (one chunk per piece, then the last chunk). Returns the body's SHA-256 (of the content, not the coding).
    @discardableResult
    public func sendBody(length: Int, chunked: Bool) async throws -> String {
        try await onThread { socket in
            let hasher = SHA256Hasher()
            var sent = 0
            try DeterministicBody.block.withUnsafeBytes { block in
                while sent < length {
                    let count = min(length - sent, DeterministicBody.blockSize)
                    let piece = UnsafeRawBufferPointer(rebasing: block[..<count])
                    if chunked {
                        try socket.sendAll(Array("\(String(count, radix: 16))\r\n".utf8), what: "a chunk size")
                    }
                    try socket.sendAll(piece, what: "the body at byte \(sent) of \(length)")
                    if chunked { try socket.sendAll(Array("\r\n".utf8), what: "a chunk end") }
                    hasher.update(piece)
                    sent += count
                }
            }
            if chunked { try socket.sendAll(Array("0\r\n\r\n".utf8), what: "the last chunk") }
            return hasher.finalizeHex()
        }
    }

    /// Sends one request: the request line, `headers` as given, plus `Host: <host>:<port>` when `headers` has
    /// no Host, and `Content-Length` when there is a `body` and `headers` has neither Content-Length nor
    /// Transfer-Encoding. Nothing else is added.
    public func sendRequest(
        method: String = "GET", target: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil
    ) async throws {
        try await send(
            Self.requestBytes(method: method, target: target, host: host, port: port, headers: headers, body: body))
    }

    /// `sendRequest`, then `readResponse`.
    public func request(
        method: String = "GET", target: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil,
        hashBody: Bool = false
    ) async throws -> RawHTTPResponse {
        try await sendRequest(method: method, target: target, headers: headers, body: body)
        return try await readResponse(requestMethod: method, hashBody: hashBody)
    }

    /// One request on a fresh connection that asks to close afterwards (`Connection: close` is added unless
    /// `headers` has a Connection header). Interim 1xx responses other than 101 are skipped.
    public static func request(
        port: Int, host: String = "127.0.0.1", method: String = "GET", target: String,
        headers: [(name: String, value: String)] = [], body: [UInt8]? = nil, hashBody: Bool = false,
        timeout: Double = 30
    ) async throws -> RawHTTPResponse {
        let connection = try await connect(port: port, host: host, timeout: timeout)
        defer { connection.close() }
        var headers = headers
        if !headers.contains(where: { $0.name.lowercased() == "connection" }) {
            headers.append(("Connection", "close"))
        }
        try await connection.sendRequest(method: method, target: target, headers: headers, body: body)
        while true {
            let response = try await connection.readResponse(requestMethod: method, hashBody: hashBody)
            if (100..<200).contains(response.status) && response.status != 101 { continue }
            return response
        }
    }

    static func requestBytes(
        method: String, target: String, host: String, port: Int, headers: [(name: String, value: String)],
        body: [UInt8]?
    ) -> [UInt8] {
        func has(_ name: String) -> Bool { headers.contains { $0.name.lowercased() == name } }
        var head = "\(method) \(target) HTTP/1.1\r\n"
        if !has("host") {
            head += "Host: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\n"
        }
        for (name, value) in headers {
            head += "\(name): \(value)\r\n"
        }
        if let body, !has("content-length"), !has("transfer-encoding") {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    // MARK: Reading

    /// Reads one response. Its body is delimited by Content-Length, chunked coding (decoded) or the peer
    /// closing; there is none for `requestMethod` HEAD and for 1xx, 204 and 304. An interim response such as
    /// `100 Continue` comes back on its own: read again for the final one. After `101 Switching Protocols`
    /// the connection carries the new protocol (see `readWebSocketFrame`).
    ///
    /// With `hashBody`, the body is only hashed and counted (`bodySHA256`, `bodyLength`), for bodies too
    /// large to keep.
    public func readResponse(requestMethod: String = "GET", hashBody: Bool = false) async throws -> RawHTTPResponse {
        try await onThread { try Self.readResponse(from: $0, requestMethod: requestMethod, hashBody: hashBody) }
    }

    static func readResponse(
        from socket: BlockingSocket, requestMethod: String, hashBody: Bool
    ) throws(RawHTTPError)
        -> RawHTTPResponse
    {
        guard let statusLine = try socket.readLine(what: "a status line") else {
            throw .closedByPeer(during: "waiting for a response")
        }
        let parts = statusLine.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].starts(with: Array("HTTP/".utf8)), parts[1].count == 3,
            let status = Int(String(decoding: parts[1], as: UTF8.self))
        else { throw .malformed("status line \(headerText(statusLine).debugDescription)") }
        let version = headerText(Array(parts[0]))
        let reason = parts.count > 2 ? headerText(Array(parts[2])) : ""
        let headers = try readFields(from: socket, what: "the response headers")

        func values(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name }.map(\.value)
        }
        let codings = values("transfer-encoding").flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        let lengths = Set(values("content-length").map { $0.trimmingCharacters(in: .whitespaces) })
        let framing: RawHTTPResponse.Framing
        if requestMethod == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 {
            framing = .none
        } else if let last = codings.last {
            guard last == "chunked" else { throw .malformed("transfer coding \(codings) without chunked last") }
            framing = .chunked
        } else if let length = lengths.first {
            guard lengths.count == 1, let count = Int(length), count >= 0 else {
                throw .malformed("Content-Length \(values("content-length"))")
            }
            framing = .contentLength(count)
        } else {
            framing = .untilClose
        }

        let hasher = SHA256Hasher()
        var body: [UInt8] = []
        var bodyLength = 0
        let sink: (UnsafeRawBufferPointer) -> Void = { piece in
            hasher.update(piece)
            bodyLength += piece.count
            if !hashBody { body.append(contentsOf: piece.assumingMemoryBound(to: UInt8.self)) }
        }
        var trailers: [(name: String, value: String)] = []
        switch framing {
        case .none:
            break
        case .contentLength(let count):
            try socket.read(count, what: "a \(count)-byte response body", into: sink)
        case .untilClose:
            try socket.readToEnd(what: "the end of a response body delimited by close", into: sink)
        case .chunked:
            while true {
                guard let sizeLine = try socket.readLine(what: "a chunk size") else {
                    throw .closedByPeer(during: "a chunked body, after \(bodyLength) bytes")
                }
                let digits = sizeLine.prefix { $0 != UInt8(ascii: ";") }
                guard let size = Int(headerText(Array(digits)).trimmingCharacters(in: .whitespaces), radix: 16)
                else { throw .malformed("chunk size line \(headerText(sizeLine).debugDescription)") }
                if size == 0 {
                    trailers = try readFields(from: socket, what: "the trailers of a chunked body")
                    break
                }
                try socket.read(size, what: "a \(size)-byte chunk", into: sink)
                guard try socket.readLine(what: "the end of a chunk") == [] else {
                    throw .malformed("a chunk is not followed by CRLF")
                }
            }
        }
        return RawHTTPResponse(
            version: version, status: status, reason: reason, headers: headers, trailers: trailers, framing: framing,
            body: body, bodyLength: bodyLength, bodySHA256: hasher.finalizeHex())
    }

    /// Header (or trailer) lines up to the empty line. An obsolete folded line continues the previous value.
    private static func readFields(
        from socket: BlockingSocket, what: String
    ) throws(RawHTTPError)
        -> [(name: String, value: String)]
    {
        var fields: [(name: String, value: String)] = []
        while true {
            guard let line = try socket.readLine(what: what) else { throw .closedByPeer(during: what) }
            if line.isEmpty { return fields }
            if let first = line.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t"), !fields.isEmpty {
                fields[fields.count - 1].value += " " + headerText(line).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
                throw .malformed("header line \(headerText(line).debugDescription)")
            }
            let value = headerText(Array(line[(colon + 1)...])).trimmingCharacters(
                in: CharacterSet(charactersIn: " \t"))
            fields.append((headerText(Array(line[..<colon])), value))
        }
    }

    /// Everything until the peer closes the connection (or resets it), including bytes already buffered.
    /// Throws `RawHTTPError.timedOut` if it is still open after `timeout` seconds.
    public func readUntilClosed(timeout: Double = 30) async throws -> [UInt8] {
        try await onThread { socket in
            var bytes: [UInt8] = []
            try socket.readToEnd(what: "the peer to close", deadline: .now + .seconds(timeout)) {
                bytes.append(contentsOf: $0.assumingMemoryBound(to: UInt8.self))
            }
            return bytes
        }
    }

    /// True when the peer closes or resets the connection within `seconds`. Bytes that arrive meanwhile are
    /// kept for later reads; false also when the connection was closed on this side.
    public func isClosedByPeer(within seconds: Double) async -> Bool {
        (try? await onThread { $0.waitForClose(until: .now + .seconds(seconds)) }) ?? false
    }
}

/// Header text: UTF-8 when the bytes are valid UTF-8, else ISO-8859-1 (one character per byte), like
/// Tests/Support/echo_upstream.py, so that no byte is lost or replaced.
func headerText(_ bytes: [UInt8]) -> String {
    String(validating: bytes, as: UTF8.self) ?? String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
}
