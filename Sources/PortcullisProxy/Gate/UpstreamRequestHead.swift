public import NIOCore
public import NIOHTTP1
public import PortcullisConfig
import PortcullisCore

/// The request head sent upstream, built from the client's. Pure.
///
/// In order:
/// 1. Every header Portcullis owns (role, audience, claim and payload headers, the `X-Forwarded-*` ones) is
///    removed in any letter case, whatever the decision: a client can never choose them.
/// 2. Hop-by-hop headers go (RFC 9110 §7.6.1): `Connection` and every header it names, `Keep-Alive`,
///    `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authorization`. A WebSocket
///    upgrade keeps `Upgrade` and `Connection: upgrade`, which are its whole point.
/// 3. `Authorization` goes too with `"authorization": "strip"`.
/// 4. Framing is restated: a `Content-Length` stays, a chunked body is sent chunked.
/// 5. `X-Forwarded-For` gets the client's address appended; `X-Forwarded-Proto` and `X-Forwarded-Host` are
///    set. `Host` and the query string pass unchanged.
/// 6. The identity headers are added.
public enum UpstreamRequestHead {
    /// Header names that are never passed on from the client, lowercased.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization",
    ]

    /// The lowercased names every request loses whatever it carries: hop-by-hop, owned, and `Authorization`
    /// when it is stripped. Computed once per configuration.
    public static func removedHeaders(forwarding: PortcullisConfiguration.Forwarding) -> Set<String> {
        var removed = hopByHop
        for name in forwarding.ownedHeaders { removed.insert(name.lowercased()) }
        removed.formUnion(["x-forwarded-proto", "x-forwarded-host"])
        if !forwarding.keepAuthorization { removed.insert("authorization") }
        return removed
    }

    /// - Parameters:
    ///   - requestID: the request's id, sent as `X-Request-Id` in place of any the client sent.
    ///   - baseRemoved: `removedHeaders(forwarding:)`, when the caller keeps it.
    public static func make(
        client head: HTTPRequestHead,
        target: String,
        identityHeaders: [(name: String, value: String)],
        forwarding: PortcullisConfiguration.Forwarding,
        clientAddress: String?,
        isUpgrade: Bool,
        requestID: String? = nil,
        baseRemoved: Set<String>? = nil
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + identityHeaders.count + 5)
        writeHeaders(
            of: head, identityHeaders: identityHeaders, removed: baseRemoved ?? removedHeaders(forwarding: forwarding),
            clientAddress: clientAddress, isUpgrade: isUpgrade, requestID: requestID, into: &headers)
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: target, headers: headers)
    }

    /// The same head as `make` builds, as the bytes the relay sends: the request line, the header lines, the
    /// empty line. Written in one pass, with no header list in between and no encoder after.
    public static func bytes(
        client head: HTTPRequestHead,
        target: String,
        identityHeaders: [(name: String, value: String)],
        clientAddress: String?,
        isUpgrade: Bool,
        requestID: String?,
        removed: Set<String>,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var lines = HeaderLines(buffer: allocator.buffer(capacity: 512))
        lines.buffer.writeString(head.method.rawValue)
        lines.buffer.writeStaticString(" ")
        lines.buffer.writeString(target)
        lines.buffer.writeStaticString(" HTTP/1.1\r\n")
        writeHeaders(
            of: head, identityHeaders: identityHeaders, removed: removed, clientAddress: clientAddress,
            isUpgrade: isUpgrade, requestID: requestID, into: &lines)
        lines.buffer.writeStaticString("\r\n")
        return lines.buffer
    }

    /// Where `writeHeaders` puts each header: a header list (`make`, and the tests) or bytes (`bytes`).
    protocol HeaderSink {
        mutating func add(name: String, value: String)
    }

    /// Header lines written as bytes. Names and values have passed the request decoder, and identity values
    /// are clean header values (`ForwardedIdentity`), so no byte here can end a line early.
    struct HeaderLines: HeaderSink {
        var buffer: ByteBuffer

        mutating func add(name: String, value: String) {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
    }

    private static func writeHeaders(
        of head: HTTPRequestHead,
        identityHeaders: [(name: String, value: String)],
        removed: Set<String>,
        clientAddress: String?,
        isUpgrade: Bool,
        requestID: String?,
        into headers: inout some HeaderSink
    ) {
        var removed = removed
        let connectionTokens = head.headers[canonicalForm: "connection"]
        if !connectionTokens.isEmpty {
            for value in connectionTokens { removed.insert(value.lowercased()) }
            // What `Connection` names can never drop what framing and routing need.
            removed.subtract(["host", "content-length"])
        }
        // Names `Connection` lists that Portcullis sets itself (X-Forwarded-For) are still set below.

        // One string, not a list to join: a request rarely arrives with an `X-Forwarded-For` of its own.
        var forwardedFor: String?
        func appendForwardedFor(_ value: String) { forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value }
        // The gate admits only `chunked`; a chunked body never also carries a length (RFC 9112 §6.3).
        let isChunked = head.headers.contains(name: "transfer-encoding")
        var host: String?
        var hasLength = false
        for (name, value) in head.headers {
            let lowered = name.lowercased()
            if lowered == "transfer-encoding" || (isChunked && lowered == "content-length") { continue }
            if lowered == "x-forwarded-for" {
                appendForwardedFor(value)
                continue
            }
            if requestID != nil && lowered == "x-request-id" { continue }
            if lowered == "host" { host = host ?? value }
            if removed.contains(lowered) { continue }
            if lowered == "content-length" { hasLength = true }
            headers.add(name: name, value: value)
        }
        if isChunked { headers.add(name: "Transfer-Encoding", value: "chunked") }
        if !isChunked && !hasLength && head.method.hasRequestBody {
            headers.add(name: "Content-Length", value: "0")
        }
        if isUpgrade, let upgrade = head.headers.first(name: "upgrade") {
            headers.add(name: "Connection", value: "upgrade")
            headers.add(name: "Upgrade", value: upgrade)
        }
        if let clientAddress { appendForwardedFor(clientAddress) }
        if let forwardedFor { headers.add(name: "X-Forwarded-For", value: forwardedFor) }
        headers.add(name: "X-Forwarded-Proto", value: "http")
        if let host { headers.add(name: "X-Forwarded-Host", value: host) }
        if let requestID { headers.add(name: "X-Request-Id", value: requestID) }
        for header in identityHeaders { headers.add(name: header.name, value: header.value) }
    }

    /// Whether the client asks for a protocol upgrade the relay can carry: `Upgrade` present and
    /// `Connection` naming it, on a GET (RFC 6455 §4.1).
    public static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        head.method == .GET && head.headers.contains(name: "upgrade")
            && head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }
}

extension HTTPMethod {
    /// Methods whose requests are expected to carry content; an empty one is stated as `Content-Length: 0`.
    var hasRequestBody: Bool {
        switch self {
        case .POST, .PUT, .PATCH: true
        default: false
        }
    }
}

extension HTTPHeaders: UpstreamRequestHead.HeaderSink {}
