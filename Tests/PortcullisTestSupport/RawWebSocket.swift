import Foundation

/// RFC 6455 opcodes.
public enum WebSocketOpcode {
    public static let continuation: UInt8 = 0x0
    public static let text: UInt8 = 0x1
    public static let binary: UInt8 = 0x2
    public static let close: UInt8 = 0x8
    public static let ping: UInt8 = 0x9
    public static let pong: UInt8 = 0xA
}

/// One WebSocket frame as it arrived.
public struct WebSocketFrame: Sendable, Equatable {
    public var fin: Bool
    public var opcode: UInt8
    /// Whether the sender masked it (servers must not, RFC 6455 section 5.1).
    public var masked: Bool
    /// The payload, unmasked.
    public var payload: [UInt8]

    public init(fin: Bool = true, opcode: UInt8, masked: Bool = false, payload: [UInt8]) {
        self.fin = fin
        self.opcode = opcode
        self.masked = masked
        self.payload = payload
    }

    /// The payload as UTF-8 (invalid sequences replaced).
    public var text: String {
        String(decoding: payload, as: UTF8.self)
    }
}

extension RawHTTPConnection {
    /// The Sec-WebSocket-Accept a server must answer to `key` (RFC 6455 section 4.2.2).
    public static func webSocketAccept(forKey key: String) -> String {
        Data(sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
    }

    /// Sends a WebSocket handshake for `target` (with a fresh random key, `headers` added after the
    /// handshake's own) and reads the answer. A 101 whose Sec-WebSocket-Accept does not match the key
    /// throws; any other answer (a 401 from the proxy, say) is returned as it is.
    public func upgradeToWebSocket(
        target: String = "/ws", headers: [(name: String, value: String)] = []
    )
        async throws -> RawHTTPResponse
    {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let handshake: [(name: String, value: String)] = [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        try await sendRequest(method: "GET", target: target, headers: handshake + headers)
        let response = try await readResponse()
        if response.status == 101 {
            let accept = response.header("Sec-WebSocket-Accept")
            guard accept == Self.webSocketAccept(forKey: key) else {
                throw RawHTTPError.malformed("Sec-WebSocket-Accept \(accept ?? "missing") for key \(key)")
            }
        }
        return response
    }

    /// Sends one frame, masked with a random key as a client must (RFC 6455 section 5.3).
    public func sendWebSocketFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true) async throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | (opcode & 0x0F)]
        switch payload.count {
        case ..<126:
            frame.append(0x80 | UInt8(payload.count))
        case ..<65536:
            frame.append(0x80 | 126)
            frame += withUnsafeBytes(of: UInt16(payload.count).bigEndian, Array.init)
        default:
            frame.append(0x80 | 127)
            frame += withUnsafeBytes(of: UInt64(payload.count).bigEndian, Array.init)
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        try await send(frame)
    }

    public func sendWebSocketText(_ text: String) async throws {
        try await sendWebSocketFrame(opcode: WebSocketOpcode.text, payload: Array(text.utf8))
    }

    /// Reads the next frame, whatever its opcode (pings and closes included), unmasking it if it was masked.
    public func readWebSocketFrame() async throws -> WebSocketFrame {
        try await onThread { socket in
            let head = try socket.readExact(2, what: "a WebSocket frame header")
            var length = UInt64(head[1] & 0x7F)
            if length == 126 {
                length = try socket.readExact(2, what: "a WebSocket frame length").reduce(0) { $0 << 8 | UInt64($1) }
            } else if length == 127 {
                length = try socket.readExact(8, what: "a WebSocket frame length").reduce(0) { $0 << 8 | UInt64($1) }
            }
            let masked = head[1] & 0x80 != 0
            let mask = masked ? try socket.readExact(4, what: "a WebSocket mask") : []
            guard length <= UInt64(Int32.max) else {
                throw RawHTTPError.malformed("WebSocket frame of \(length) bytes")
            }
            var payload = try socket.readExact(Int(length), what: "a \(length)-byte WebSocket payload")
            if masked {
                for index in payload.indices { payload[index] ^= mask[index & 3] }
            }
            return WebSocketFrame(fin: head[0] & 0x80 != 0, opcode: head[0] & 0x0F, masked: masked, payload: payload)
        }
    }
}
