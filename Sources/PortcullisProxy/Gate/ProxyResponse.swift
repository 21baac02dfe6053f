public import PortcullisCore

/// A response Portcullis writes itself: a refusal, or a failure to reach the upstream. Always JSON, always
/// with a length, never cached.
public struct ProxyResponse: Sendable, Hashable {
    public var status: Int
    /// Headers besides the framing ones the writer adds (`Content-Type`, `Content-Length`, `Cache-Control`).
    public var headers: [Header]
    /// The JSON body.
    public var body: String
    /// The error code in the body, for logs and metrics.
    public var code: String

    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String
    }

    public init(status: Int, headers: [Header] = [], body: String, code: String) {
        self.status = status
        self.headers = headers
        self.body = body
        self.code = code
    }

    /// The answer to a denial, in the configured error shape, with its `WWW-Authenticate` challenge.
    public init?(_ decision: AuthDecision, errorFormat: AuthDecision.ErrorFormat) {
        guard case .deny(let status, let challenge, let code, _) = decision,
            let body = decision.responseBody(errorFormat: errorFormat)
        else { return nil }
        self.init(
            status: status, headers: challenge.map { [Header(name: "WWW-Authenticate", value: $0)] } ?? [],
            body: body, code: code)
    }

    /// A failure that is not about the token: a bad request line or path, a limit, the upstream.
    public static func failure(status: Int, error: String, message: String) -> ProxyResponse {
        ProxyResponse(
            status: status, headers: [],
            body: JSONValue.object(["error": .string(error), "message": .string(message)]).compactJSON, code: error)
    }

    static func badPath(_ refusal: RequestPathRefusal) -> ProxyResponse {
        failure(status: 400, error: refusal.reason.rawValue, message: refusal.message)
    }

    static let headersTooLarge = failure(
        status: 431, error: "headers_too_large", message: "The request's header section is too large")
    static let badRequest = failure(status: 400, error: "bad_request", message: "The request could not be parsed")
    static let unsupportedTransferCoding = failure(
        status: 400, error: "bad_request", message: "Only the chunked transfer coding is accepted")
    static let bodyTooLarge = failure(
        status: 413, error: "body_too_large", message: "The request body is larger than allowed")
    static let upstreamUnavailable = failure(
        status: 502, error: "upstream_unavailable", message: "The upstream could not be reached")
    static let upstreamFailed = failure(
        status: 502, error: "upstream_failed", message: "The upstream closed the connection without a response")
    static let upstreamInvalidResponse = failure(
        status: 502, error: "upstream_invalid_response",
        message: "The upstream's response was malformed or ambiguously framed")
    /// The decision family a status belongs to, for metrics and access logs.
    var decision: String {
        switch status {
        case 401: "unauthorized"
        case 403: "forbidden"
        case 503: "unavailable"
        case 502, 504: "upstream_error"
        default: "bad_request"
        }
    }

    static let upstreamTimeout = failure(
        status: 504, error: "upstream_timeout", message: "The upstream did not answer in time")
    static let tooManyConnections = failure(
        status: 503, error: "too_many_connections", message: "The proxy is at its connection limit")
}
