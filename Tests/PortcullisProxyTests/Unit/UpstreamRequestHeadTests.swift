import NIOCore
import NIOHTTP1
import PortcullisConfig
import PortcullisCore
import Testing

@testable import PortcullisProxy

/// The request head sent upstream, built from the client's.
@Suite("Unit: UpstreamRequestHead")
struct UpstreamRequestHeadTests {
    static let identity: [(name: String, value: String)] = [
        ("X-Postgres-Role", "webuser"), ("X-Jwt-Audience", "api"), ("X-User-Id", "user-1"),
    ]

    static func make(
        _ client: HTTPRequestHead, target: String = "/t", identity: [(name: String, value: String)] = identity,
        forwarding: PortcullisConfiguration.Forwarding? = nil, clientAddress: String? = "10.0.0.9",
        isUpgrade: Bool = false
    ) throws -> HTTPHeaders {
        try make(
            client: client, target: target, identity: identity, forwarding: forwarding, clientAddress: clientAddress,
            isUpgrade: isUpgrade
        ).headers
    }

    static func make(
        client: HTTPRequestHead, target: String, identity: [(name: String, value: String)],
        forwarding: PortcullisConfiguration.Forwarding?, clientAddress: String?, isUpgrade: Bool
    ) throws -> HTTPRequestHead {
        UpstreamRequestHead.make(
            client: client, target: target, identityHeaders: identity,
            forwarding: try forwarding ?? UnitFixtures.forwarding(), clientAddress: clientAddress,
            isUpgrade: isUpgrade)
    }

    // MARK: Identity headers

    @Test("header spoofing: identity headers sent by the client are removed in any letter case")
    func headerSpoofingOfIdentityHeaders() throws {
        let client = UnitFixtures.request(
            .GET, "/x",
            [
                ("Host", "a"), ("x-postgres-role", "admin"), ("X-POSTGRES-ROLE", "admin"), ("x-jwt-audience", "x"),
                ("X-User-Id", "someone-else"), ("x-user-roles", "admin"), ("X-Jwt-Claims", #"{"role":"admin"}"#),
            ])
        // An anonymous request: no identity headers at all are added, so none may survive from the client.
        let headers = try Self.make(client, identity: [])
        for name in ["X-Postgres-Role", "X-Jwt-Audience", "X-User-Id", "X-User-Roles", "X-Jwt-Claims"] {
            #expect(headers.values(name).isEmpty, "\(name)")
        }
        let withIdentity = try Self.make(client)
        #expect(withIdentity.values("x-postgres-role") == ["webuser"])
        #expect(withIdentity.values("x-user-id") == ["user-1"])
    }

    @Test("identity headers come last, in the order given")
    func identityHeadersAreAppendedInOrder() throws {
        let headers = try Self.make(UnitFixtures.request(.GET, "/x", [("Host", "a"), ("Accept", "*/*")]))
        #expect(Array(headers.names.suffix(3)) == ["X-Postgres-Role", "X-Jwt-Audience", "X-User-Id"])
    }

    @Test("hop-by-hop abuse: naming an identity or X-Forwarded header in Connection cannot remove what the proxy sets")
    func hopByHopAbuseCannotRemoveProxyHeaders() throws {
        let client = UnitFixtures.request(
            .GET, "/x",
            [
                ("Host", "a"),
                ("Connection", "close, X-Postgres-Role, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host"),
            ])
        let headers = try Self.make(client)
        #expect(headers.values("X-Postgres-Role") == ["webuser"])
        #expect(headers.values("X-Forwarded-For") == ["10.0.0.9"])
        #expect(headers.values("X-Forwarded-Proto") == ["http"])
        #expect(headers.values("X-Forwarded-Host") == ["a"])
        #expect(headers.values("Connection").isEmpty)
    }

    // MARK: Hop-by-hop

    @Test("hop-by-hop headers are removed in any letter case; end-to-end headers pass in order")
    func hopByHopHeadersAreRemoved() throws {
        let client = UnitFixtures.request(
            .GET, "/x",
            [
                ("Host", "a"), ("Accept", "text/plain"), ("keep-alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("TE", "trailers"), ("Trailer", "X-Sum"), ("UPGRADE", "websocket"),
                ("Proxy-Authorization", "Basic eA=="),
                ("Connection", "keep-alive"), ("Accept", "application/json"), ("Cookie", "a=1"),
            ])
        let headers = try Self.make(client, identity: [], clientAddress: nil)
        #expect(
            headers.names == ["Host", "Accept", "Accept", "Cookie", "X-Forwarded-Proto", "X-Forwarded-Host"])
        #expect(headers.values("Accept") == ["text/plain", "application/json"])
    }

    @Test("headers named by Connection are removed, but never Host or Content-Length")
    func connectionNamedHeadersAreRemovedExceptFraming() throws {
        let client = UnitFixtures.request(
            .POST, "/x",
            [
                ("Host", "a"), ("Content-Length", "3"), ("X-Secret-Hop", "1"), ("x-other", "2"), ("X-Kept", "3"),
                ("Connection", "X-SECRET-HOP, host"), ("connection", "Content-Length, X-Other"),
            ])
        let headers = try Self.make(client)
        #expect(headers.values("X-Secret-Hop").isEmpty)
        #expect(headers.values("X-Other").isEmpty)
        #expect(headers.values("X-Kept") == ["3"])
        #expect(headers.values("Host") == ["a"])
        #expect(headers.values("Content-Length") == ["3"])
    }

    @Test("Authorization passes by default and is removed in any letter case with authorization: strip")
    func authorizationKeepOrStrip() throws {
        let client = UnitFixtures.request(.GET, "/x", [("Host", "a"), ("authorization", "Bearer t")])
        #expect(try Self.make(client).values("Authorization") == ["Bearer t"])
        var strip = try UnitFixtures.forwarding()
        strip.keepAuthorization = false
        #expect(try Self.make(client, forwarding: strip).values("Authorization").isEmpty)
    }

    // MARK: Framing

    @Test("a chunked body is restated as exactly one Transfer-Encoding: chunked, without Content-Length: 0")
    func chunkedIsRestated() throws {
        let client = UnitFixtures.request(.POST, "/x", [("Host", "a"), ("transfer-encoding", "Chunked")])
        let headers = try Self.make(client)
        #expect(headers.values("Transfer-Encoding") == ["chunked"])
        #expect(headers.values("Content-Length").isEmpty)
    }

    @Test("request smuggling: the upstream head never states both Content-Length and Transfer-Encoding")
    func requestSmugglingLengthBesideCoding() throws {
        // What NIO's decoder hands over for "Transfer-Encoding: " (empty) beside "Content-Length: 5": it frames
        // the body by the length. RFC 9112 §6.1: a sender must not send Content-Length with Transfer-Encoding.
        let client = UnitFixtures.request(
            .POST, "/x", [("Host", "a"), ("Transfer-Encoding", ""), ("Content-Length", "5")])
        let headers = try Self.make(client)
        #expect(headers.values("Content-Length").isEmpty || headers.values("Transfer-Encoding").isEmpty)
    }

    @Test("POST, PUT and PATCH without a body get Content-Length: 0; GET and DELETE do not; a length is kept")
    func emptyBodyIsStatedForMethodsWithContent() throws {
        for method in [HTTPMethod.POST, .PUT, .PATCH] {
            let headers = try Self.make(UnitFixtures.request(method, "/x"))
            #expect(headers.values("Content-Length") == ["0"], "\(method)")
        }
        for method in [HTTPMethod.GET, .DELETE, .HEAD] {
            #expect(try Self.make(UnitFixtures.request(method, "/x")).values("Content-Length").isEmpty, "\(method)")
        }
        let withLength = UnitFixtures.request(.POST, "/x", [("Host", "a"), ("content-length", "12")])
        #expect(try Self.make(withLength).values("Content-Length") == ["12"])
    }

    @Test("the target, method and Host are the given ones, and the version is always HTTP/1.1")
    func requestLineAndHost() throws {
        let client = UnitFixtures.request(
            .PUT, "http://other/raw/../path?q", [("Host", "api.test:8443")], version: .http1_0)
        let head = try Self.make(
            client: client, target: "/path?q", identity: [], forwarding: nil, clientAddress: nil, isUpgrade: false)
        #expect(head.uri == "/path?q")
        #expect(head.method == .PUT)
        #expect(head.version == .http1_1)
        #expect(head.headers.values("Host") == ["api.test:8443"])
    }

    // MARK: X-Forwarded

    @Test("X-Forwarded-For: the client's address is appended to every client X-Forwarded-For, as one header")
    func forwardedForIsAppendedAndJoined() throws {
        let client = UnitFixtures.request(
            .GET, "/x", [("Host", "a"), ("X-Forwarded-For", "1.1.1.1, 2.2.2.2"), ("x-forwarded-for", "3.3.3.3")])
        #expect(try Self.make(client).values("X-Forwarded-For") == ["1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9"])
        #expect(try Self.make(client, clientAddress: nil).values("X-Forwarded-For") == ["1.1.1.1, 2.2.2.2, 3.3.3.3"])
        #expect(try Self.make(UnitFixtures.request(.GET, "/x"), clientAddress: nil).values("X-Forwarded-For").isEmpty)
    }

    @Test("X-Forwarded-Proto and X-Forwarded-Host replace the client's, whatever their letter case")
    func forwardedProtoAndHostReplaceClientValues() throws {
        let client = UnitFixtures.request(
            .GET, "/x",
            [
                ("x-forwarded-proto", "https"), ("Host", "api.test"), ("X-FORWARDED-HOST", "evil.test"),
                ("Host", "second.test"),
            ])
        let headers = try Self.make(client)
        #expect(headers.values("X-Forwarded-Proto") == ["http"])
        #expect(headers.values("X-Forwarded-Host") == ["api.test"])
        // No Host, no X-Forwarded-Host.
        let noHost = try Self.make(UnitFixtures.request(.GET, "/x", [("X-Forwarded-Host", "evil.test")]))
        #expect(noHost.values("X-Forwarded-Host").isEmpty)
    }

    @Test("the client's Forwarded (RFC 7239) is removed in any letter case: it would contradict X-Forwarded-*")
    func forwardedRemoved() throws {
        let client = UnitFixtures.request(
            .GET, "/x",
            [
                ("Host", "api.test"), ("Forwarded", "for=192.0.2.60;proto=https;host=evil.test"),
                ("FORWARDED", "for=198.51.100.17"), ("X-Forwarded-Prefix", "/kept"),
            ])
        let headers = try Self.make(client)
        #expect(headers.values("Forwarded").isEmpty)
        #expect(headers.values("X-Forwarded-Host") == ["api.test"])
        #expect(headers.values("X-Forwarded-Prefix") == ["/kept"])
    }

    @Test("X-Request-Id: the request's id replaces every one the client sent, in any letter case; kept without one")
    func requestIDReplacesClientValues() throws {
        let client = UnitFixtures.request(
            .GET, "/x", [("Host", "a"), ("X-Request-Id", "client-1"), ("x-request-id", "client-2")])
        let withID = UpstreamRequestHead.make(
            client: client, target: "/x", identityHeaders: [], forwarding: try UnitFixtures.forwarding(),
            clientAddress: nil, isUpgrade: false, requestID: "proxy-7")
        #expect(withID.headers.values("X-Request-Id") == ["proxy-7"])
        // Without an id of its own, the proxy passes the client's on, as any other header.
        #expect(try Self.make(client).values("X-Request-Id") == ["client-1", "client-2"])
    }

    // MARK: Upgrades

    @Test("an upgrade keeps Upgrade and states Connection: upgrade, dropping the other Connection tokens")
    func upgradeKeepsUpgradeHeaders() throws {
        let client = UnitFixtures.request(
            .GET, "/ws",
            [
                ("Host", "a"), ("Connection", "keep-alive, Upgrade, X-Hop"), ("Upgrade", "websocket"), ("X-Hop", "1"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ])
        let upgraded = try Self.make(client, isUpgrade: true)
        #expect(upgraded.values("Connection") == ["upgrade"])
        #expect(upgraded.values("Upgrade") == ["websocket"])
        #expect(upgraded.values("X-Hop").isEmpty)
        #expect(upgraded.values("Sec-WebSocket-Key") == ["dGhlIHNhbXBsZSBub25jZQ=="])

        let plain = try Self.make(client, isUpgrade: false)
        #expect(plain.values("Connection").isEmpty)
        #expect(plain.values("Upgrade").isEmpty)
    }

    @Test("isUpgradeRequest: a GET with Upgrade and a Connection naming upgrade, in any case, and nothing else")
    func upgradeRequestDetection() {
        func head(_ method: HTTPMethod, _ headers: [(String, String)]) -> HTTPRequestHead {
            UnitFixtures.request(method, "/ws", [("Host", "a")] + headers)
        }
        #expect(
            UpstreamRequestHead.isUpgradeRequest(head(.GET, [("Connection", "Upgrade"), ("Upgrade", "websocket")])))
        #expect(
            UpstreamRequestHead.isUpgradeRequest(
                head(.GET, [("connection", "keep-alive, UPGRADE"), ("upgrade", "websocket")])))
        #expect(!UpstreamRequestHead.isUpgradeRequest(head(.POST, [("Connection", "upgrade"), ("Upgrade", "h2c")])))
        #expect(!UpstreamRequestHead.isUpgradeRequest(head(.GET, [("Upgrade", "websocket")])))
        #expect(!UpstreamRequestHead.isUpgradeRequest(head(.GET, [("Connection", "upgrade")])))
        #expect(
            !UpstreamRequestHead.isUpgradeRequest(head(.GET, [("Connection", "keep-alive"), ("Upgrade", "websocket")])))
    }

    // MARK: Bytes

    @Test("the bytes sent upstream are the head `make` builds, line for line: request line, headers, empty line")
    func bytesMatchTheHead() throws {
        let forwarding = try UnitFixtures.forwarding()
        let removed = UpstreamRequestHead.removedHeaders(forwarding: forwarding)
        let clients = [
            UnitFixtures.request(.GET, "/x", [("Host", "a"), ("Accept", "*/*")]),
            UnitFixtures.request(
                .POST, "/items",
                [
                    ("Host", "api.test"), ("Transfer-Encoding", "chunked"), ("Content-Length", "5"),
                    ("X-Forwarded-For", "10.0.0.1"), ("Connection", "keep-alive, X-Drop"), ("X-Drop", "1"),
                    ("x-postgres-role", "admin"), ("X-Request-Id", "client-id"),
                ]),
            UnitFixtures.request(.PUT, "/empty", [("Host", "h")]),
            UnitFixtures.request(
                .GET, "/ws", [("Host", "h"), ("Connection", "Upgrade"), ("Upgrade", "websocket")]),
            // Longer than the room reserved for it: the Host comes back as X-Forwarded-Host, and each
            // X-Forwarded-For gains a separator.
            UnitFixtures.request(
                .GET, "/long",
                [("Host", String(repeating: "h", count: 2_000))]
                    + (0..<200).map { _ in ("X-Forwarded-For", "1") }),
        ]
        for client in clients {
            let isUpgrade = UpstreamRequestHead.isUpgradeRequest(client)
            let head = UpstreamRequestHead.make(
                client: client, target: "/t?q=1", identityHeaders: Self.identity, forwarding: forwarding,
                clientAddress: "10.0.0.9", isUpgrade: isUpgrade, requestID: "rid", baseRemoved: removed)
            var expected = "\(head.method.rawValue) /t?q=1 HTTP/1.1\r\n"
            for (name, value) in head.headers { expected += "\(name): \(value)\r\n" }
            expected += "\r\n"
            let bytes = UpstreamRequestHead.bytes(
                client: client, target: "/t?q=1", identityHeaders: Self.identity, clientAddress: "10.0.0.9",
                isUpgrade: isUpgrade, requestID: "rid", removed: removed, allocator: ByteBufferAllocator())
            #expect(String(buffer: bytes) == expected)
            // Too little room at first: written again, the same.
            let retried = UpstreamRequestHead.bytes(
                client: client, target: "/t?q=1", identityHeaders: Self.identity, clientAddress: "10.0.0.9",
                isUpgrade: isUpgrade, requestID: "rid", removed: removed, allocator: ByteBufferAllocator(),
                reserving: 1)
            #expect(String(buffer: retried) == expected)
        }
    }

    @Test("removed names match in any letter case, and only whole names")
    func removedNamesMatchInAnyCase() {
        let names = HeaderNameSet(["x-postgres-role", "TE", "Proxy-Authorization"])
        for name in ["X-POSTGRES-ROLE", "x-Postgres-Role", "te", "Te", "proxy-authorization"] {
            #expect(names.contains(name), "\(name)")
        }
        // Same length, other bytes; prefixes; longer than any name; `~` is not `^` (a fold by `| 0x20` would
        // say it is).
        for name in ["x-postgres-rolf", "t", "tex", "x-postgres-role-", "", String(repeating: "a", count: 300), "t~"] {
            #expect(!names.contains(name), "\(name)")
        }
        #expect(!HeaderNameSet(["t^"]).contains("t~"))
    }
}
