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
///    set, and the client's `Forwarded` (RFC 7239) is removed. `Host` and the query string pass unchanged.
/// 6. The identity headers are added.
public enum UpstreamRequestHead {
    /// Header names that are never passed on from the client.
    static let hopByHop = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization",
    ]

    /// The names every request loses whatever it carries: hop-by-hop, owned, and `Authorization` when it is
    /// stripped. Computed once per configuration.
    public static func removedHeaders(forwarding: PortcullisConfiguration.Forwarding) -> HeaderNameSet {
        var removed = HeaderNameSet(hopByHop)
        for name in forwarding.ownedHeaders { removed.insert(name) }
        removed.insert("x-forwarded-proto")
        removed.insert("x-forwarded-host")
        // RFC 7239's form of the same facts: an upstream that prefers it (Spring's ForwardedHeaderFilter does)
        // would read the client's host and proto over the X-Forwarded-* Portcullis sets.
        removed.insert("forwarded")
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
        baseRemoved: HeaderNameSet? = nil
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + identityHeaders.count + 5)
        writeHeaders(
            of: head, identityHeaders: identityHeaders, removed: baseRemoved ?? removedHeaders(forwarding: forwarding),
            clientAddress: clientAddress, isUpgrade: isUpgrade, requestID: requestID, into: &headers)
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: target, headers: headers)
    }

    /// The same head as `make` builds, as the bytes the relay sends: the request line, the header lines, the
    /// empty line. Written in one pass straight into the buffer's memory, with no header list in between, no
    /// encoder after, and no buffer call per piece (each checks uniqueness and capacity, which cost more than
    /// the copying here).
    ///
    /// - Parameter reserving: the bytes to reserve first; by default the client's head plus the identity
    ///   headers plus room for what Portcullis adds. When the head turns out longer, it is written again into
    ///   as many bytes as it needed.
    public static func bytes(
        client head: HTTPRequestHead,
        target: String,
        identityHeaders: [(name: String, value: String)],
        clientAddress: String?,
        isUpgrade: Bool,
        requestID: String?,
        removed: HeaderNameSet,
        allocator: ByteBufferAllocator,
        reserving: Int? = nil
    ) -> ByteBuffer {
        var capacity = reserving ?? estimatedLength(of: head, target: target, identityHeaders: identityHeaders)
        var buffer = allocator.buffer(capacity: capacity)
        while true {
            var needed = 0
            let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
                var lines = HeadWriter(memory: memory)
                lines.write(head.method.rawValue)
                lines.write(" ")
                lines.write(target)
                lines.write(" HTTP/1.1\r\n")
                writeHeaders(
                    of: head, identityHeaders: identityHeaders, removed: removed, clientAddress: clientAddress,
                    isUpgrade: isUpgrade, requestID: requestID, into: &lines)
                lines.write("\r\n")
                needed = lines.count
                return lines.count <= memory.count ? lines.count : 0
            }
            if written == needed { return buffer }
            capacity = needed
        }
    }

    /// Room for the head `bytes` writes in all but unusual requests: everything the client sent, the
    /// identity headers, and the lines Portcullis adds (`X-Forwarded-*`, `X-Request-Id`, framing).
    private static func estimatedLength(
        of head: HTTPRequestHead, target: String, identityHeaders: [(name: String, value: String)]
    ) -> Int {
        var length = head.method.rawValue.utf8.count + target.utf8.count + 256
        for (name, value) in head.headers { length += name.utf8.count + value.utf8.count + 4 }
        for (name, value) in identityHeaders { length += name.utf8.count + value.utf8.count + 4 }
        return length
    }

    /// Where `writeHeaders` puts each header: a header list (`make`, and the tests) or bytes (`bytes`).
    protocol HeaderSink {
        mutating func add(name: String, value: String)
    }

    /// Header lines written into memory. Names and values have passed the request reader, and identity values
    /// are clean header values (`ForwardedIdentity`), so no byte here can end a line early.
    struct HeadWriter: HeaderSink {
        let memory: UnsafeMutableRawBufferPointer
        /// The bytes written so far, or that would have been: past `memory.count`, nothing more is copied.
        private(set) var count = 0

        init(memory: UnsafeMutableRawBufferPointer) {
            self.memory = memory
        }

        mutating func write(_ text: String) {
            var text = text
            text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
        }

        mutating func write(_ text: StaticString) {
            write(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }

        private mutating func write(_ bytes: UnsafeRawBufferPointer) {
            if count + bytes.count <= memory.count {
                UnsafeMutableRawBufferPointer(rebasing: memory[count...]).copyMemory(from: bytes)
            }
            count += bytes.count
        }

        mutating func add(name: String, value: String) {
            write(name)
            write(": ")
            write(value)
            write("\r\n")
        }
    }

    /// The client headers `writeHeaders` treats by name, whatever else it removes.
    private enum NamedHeader {
        case transferEncoding, contentLength, forwardedFor, requestID, host

        init?(_ name: UnsafeBufferPointer<UInt8>) {
            func matches(_ expected: StaticString) -> Bool {
                PolicyText.equalsIgnoringASCIICase(
                    name, UnsafeBufferPointer(start: expected.utf8Start, count: expected.utf8CodeUnitCount))
            }
            switch name.count {
            case 4 where matches("host"): self = .host
            case 12 where matches("x-request-id"): self = .requestID
            case 14 where matches("content-length"): self = .contentLength
            case 15 where matches("x-forwarded-for"): self = .forwardedFor
            case 17 where matches("transfer-encoding"): self = .transferEncoding
            default: return nil
            }
        }
    }

    private static func writeHeaders(
        of head: HTTPRequestHead,
        identityHeaders: [(name: String, value: String)],
        removed: HeaderNameSet,
        clientAddress: String?,
        isUpgrade: Bool,
        requestID: String?,
        into headers: inout some HeaderSink
    ) {
        // The names `Connection` lists go too, but never what framing and routing need. Names it lists that
        // Portcullis sets itself (X-Forwarded-For) are still set below.
        var connectionNamed = head.headers[canonicalForm: "connection"]
        if !connectionNamed.isEmpty {
            connectionNamed.removeAll {
                PolicyText.equalsIgnoringASCIICase($0, "host")
                    || PolicyText.equalsIgnoringASCIICase($0, "content-length")
            }
        }

        // One string, not a list to join: a request rarely arrives with an `X-Forwarded-For` of its own.
        var forwardedFor: String?
        func appendForwardedFor(_ value: String) { forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value }
        // The gate admits only `chunked`; a chunked body never also carries a length (RFC 9112 §6.3).
        let isChunked = head.headers.contains(name: "transfer-encoding")
        var host: String?
        var hasLength = false
        for (name, value) in head.headers {
            var name = name
            let (named, isRemoved) = name.withUTF8 { bytes in
                (
                    NamedHeader(bytes),
                    removed.contains(bytes)
                        || connectionNamed.contains { listed in
                            listed.utf8.withContiguousStorageIfAvailable {
                                PolicyText.equalsIgnoringASCIICase(bytes, $0)
                            } ?? PolicyText.equalsIgnoringASCIICase(listed, String(decoding: bytes, as: UTF8.self))
                        }
                )
            }
            switch named {
            case .transferEncoding: continue
            case .contentLength where isChunked: continue
            case .forwardedFor:
                appendForwardedFor(value)
                continue
            case .requestID where requestID != nil: continue
            case .host: host = host ?? value
            default: break
            }
            if isRemoved { continue }
            if named == .contentLength { hasLength = true }
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
