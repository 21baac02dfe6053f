public import PortcullisCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a raw HTTP exchange failed.
public enum RawHTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing arrived (or nothing was taken) within the connection's timeout.
    case timedOut(waitingFor: String)
    /// The peer closed the connection before a complete message.
    case closedByPeer(during: String)
    /// The peer reset the connection (ECONNRESET or EPIPE).
    case connectionReset(during: String)
    case connectionRefused(host: String, port: Int)
    /// The peer sent something that is not HTTP/1.1 (or not a WebSocket frame).
    case malformed(String)
    case system(call: String, errno: Int32)
    /// The connection was already closed on this side.
    case closed

    public var description: String {
        switch self {
        case .timedOut(let what): "timed out waiting for \(what)"
        case .closedByPeer(let what): "the peer closed the connection during \(what)"
        case .connectionReset(let what): "the peer reset the connection during \(what)"
        case .connectionRefused(let host, let port): "connection to \(host):\(port) refused"
        case .malformed(let what): "malformed: \(what)"
        case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        case .closed: "the connection is closed"
        }
    }
}

/// One HTTP/1.1 response as it arrived: raw header names in order, repeats kept.
public struct RawHTTPResponse: Sendable {
    /// How the body was delimited on the wire.
    public enum Framing: Sendable, Equatable {
        /// No body by definition: a response to HEAD, 1xx, 204, 304.
        case none
        case contentLength(Int)
        case chunked
        /// No Content-Length and no chunked coding: the body ran until the peer closed.
        case untilClose
    }

    /// "HTTP/1.1", as in the status line.
    public let version: String
    public let status: Int
    public let reason: String
    public let headers: [(name: String, value: String)]
    /// Trailer fields after a chunked body.
    public let trailers: [(name: String, value: String)]
    public let framing: Framing
    /// The body, chunked coding removed; empty when it was read with `hashBody: true`.
    public let body: [UInt8]
    /// The body's length, also when it was only hashed.
    public let bodyLength: Int
    /// Lowercase hex SHA-256 of the body, also when it was only hashed.
    public let bodySHA256: String

    public init(
        version: String, status: Int, reason: String, headers: [(name: String, value: String)],
        trailers: [(name: String, value: String)] = [], framing: Framing, body: [UInt8], bodyLength: Int,
        bodySHA256: String
    ) {
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.trailers = trailers
        self.framing = framing
        self.body = body
        self.bodyLength = bodyLength
        self.bodySHA256 = bodySHA256
    }

    /// The first value of the header `name` (compared case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every value of the header `name` (compared case-insensitively), in order.
    public func headers(named name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// The body as UTF-8 (invalid sequences replaced).
    public var bodyText: String {
        String(decoding: body, as: UTF8.self)
    }

    /// The body as JSON, when it is a JSON document.
    public var json: JSONValue? {
        try? JSONParser().parse(body)
    }

    /// What EchoUpstream's default route reports about the request it received; nil for other responses.
    public var echoedRequest: EchoedRequest? {
        json.flatMap(EchoedRequest.init(json:))
    }
}

/// The request as Tests/Support/echo_upstream.py received it (its default route's JSON body).
public struct EchoedRequest: Sendable {
    public let method: String
    /// The request target exactly as received.
    public let target: String
    public let version: String
    /// Header fields exactly as received: raw names, order and repeats.
    public let headers: [(name: String, value: String)]
    public let bodyLength: Int
    public let bodySHA256: String
    /// The trailer fields of a chunked body exactly as received; empty for other bodies.
    public let trailers: [(name: String, value: String)]
    /// Which TCP connection to the upstream carried it: 1 for the first the upstream accepted, and so on.
    public let connection: Int
    /// Its position on that connection, from 1.
    public let requestOnConnection: Int

    public init?(json: JSONValue) {
        guard let method = json["method"]?.stringValue, let target = json["target"]?.stringValue,
            let version = json["version"]?.stringValue,
            let bodyLength = json["body_length"]?.intValue, let bodySHA256 = json["body_sha256"]?.stringValue,
            let connection = json["connection"]?.intValue,
            let requestOnConnection = json["request_on_connection"]?.intValue,
            let headers = Self.fields(json["headers"]), let trailers = Self.fields(json["trailers"])
        else { return nil }
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.bodyLength = bodyLength
        self.bodySHA256 = bodySHA256
        self.trailers = trailers
        self.connection = connection
        self.requestOnConnection = requestOnConnection
    }

    /// `[[name, value], ...]` as the echo writes header and trailer fields.
    private static func fields(_ json: JSONValue?) -> [(name: String, value: String)]? {
        guard let pairs = json?.arrayValue else { return nil }
        var fields: [(name: String, value: String)] = []
        for pair in pairs {
            guard let field = pair.arrayValue, field.count == 2, let name = field[0].stringValue,
                let value = field[1].stringValue
            else { return nil }
            fields.append((name, value))
        }
        return fields
    }

    /// The first value of the header `name` (compared case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every value of the header `name` (compared case-insensitively), in order.
    public func headers(named name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

extension JSONValue {
    /// The integer, when this is a number written as one.
    fileprivate var intValue: Int? {
        guard case .number(let number) = self else { return nil }
        return Int(number.literal)
    }
}
