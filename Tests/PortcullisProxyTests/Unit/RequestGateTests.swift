import NIOHTTP1
import PortcullisCore
import Testing

@testable import PortcullisProxy

/// The request gate alone: limits, framing, request-target forms, path normalization, rule choice and the
/// first step of the decision. No sockets; the configuration is read from JSON.
@Suite("Unit: RequestGate")
struct RequestGateTests {
    // MARK: Targets

    @Test("an admitted request goes upstream with the normalized path and the query exactly as received")
    func upstreamTargetIsNormalizedPathPlusRawQuery() throws {
        let gate = try UnitFixtures.gate()
        let admitted = try #require(
            gate.evaluate(UnitFixtures.request(.GET, "/a/./b//c/%7euser?x=%2e%2e&y=a+b")).admission)
        #expect(admitted.upstreamTarget == "/a/b/c/~user?x=%2e%2e&y=a+b")
        #expect(try #require(gate.evaluate(UnitFixtures.request(.GET, "/a/b/..")).admission).upstreamTarget == "/a/")
    }

    @Test("a target ending in '?' keeps its empty query; a target without '?' gets none")
    func emptyQueryIsKeptAndNoQueryAddsNoMark() throws {
        let gate = try UnitFixtures.gate()
        #expect(try #require(gate.evaluate(UnitFixtures.request(.GET, "/x?")).admission).upstreamTarget == "/x?")
        #expect(try #require(gate.evaluate(UnitFixtures.request(.GET, "/x")).admission).upstreamTarget == "/x")
    }

    @Test(
        "path traversal: a dot-segment through a public prefix is judged, and forwarded, as the path it reaches",
        arguments: [
            "/public/../admin/users", "/public/%2e%2e/admin/users", "/public/.%2E/admin/users",
            "/public//..//admin/users",
        ])
    func pathTraversalThroughPublicPrefix(target: String) throws {
        let gate = try UnitFixtures.gate()
        let admitted = try #require(gate.evaluate(UnitFixtures.request(.GET, target)).admission)
        #expect(admitted.rule.path.source == "/admin/*")
        #expect(admitted.rule.roles == ["admin"])
        #expect(admitted.upstreamTarget == "/admin/users")
    }

    @Test("absolute-form: the authority is ignored and the path and query are kept, in any letter case of scheme")
    func absoluteFormIsReducedToPathAndQuery() throws {
        let gate = try UnitFixtures.gate()
        let cases: [(uri: String, target: String)] = [
            ("http://internal.example:9999/public/x?y=1", "/public/x?y=1"),
            ("HTTPS://Internal.Example/public/x", "/public/x"),
            ("http://user@internal.example/public/../health", "/health"),
            ("http://internal.example", "/"),
            ("http://internal.example?q=1", "/?q=1"),
        ]
        for (uri, target) in cases {
            let admitted = try #require(gate.evaluate(UnitFixtures.request(.GET, uri)).admission, "\(uri)")
            #expect(admitted.upstreamTarget == target, "\(uri)")
        }
    }

    @Test("absolute-form: the rule is chosen by the path alone, not by the authority the client named")
    func absoluteFormAuthorityDoesNotChooseTheRule() throws {
        let gate = try UnitFixtures.gate()
        let admitted = try #require(gate.evaluate(UnitFixtures.request(.GET, "http://health/admin/x")).admission)
        #expect(admitted.rule.path.source == "/admin/*")
    }

    @Test(
        "asterisk-form, authority-form and other schemes are refused with 400 not_origin_form",
        arguments: ["*", "example.com:443", "ftp://example.com/x", "http:/x", "x/y", ""])
    func nonOriginFormsAreRefused(uri: String) throws {
        let response = try #require(try UnitFixtures.gate().evaluate(UnitFixtures.request(.OPTIONS, uri)).response)
        #expect(response.status == 400)
        #expect(response.errorCode == "not_origin_form")
    }

    @Test(
        "a path the normalizer refuses is answered 400 with its reason code",
        arguments: [
            ("/a%zz", "invalid_percent_encoding"), ("/../x", "above_root"), ("/a%00b", "control_character"),
            ("/a\\b", "backslash"), ("/public/..;/admin", "ambiguous_dot_segment"),
            ("/a/..%2Fadmin", "ambiguous_dot_segment"), ("/a/%C0%AE%C0%AE/x", "overlong_encoding"),
            ("http://h/../x", "above_root"),
        ])
    func pathRefusalsCarryTheirReasonCode(uri: String, code: String) throws {
        let response = try #require(try UnitFixtures.gate().evaluate(UnitFixtures.request(.GET, uri)).response)
        #expect(response.status == 400)
        #expect(response.errorCode == code)
    }

    // MARK: Limits

    /// The request line and header lines as they are on the wire, without the blank line that ends them.
    static func wireSize(_ head: HTTPRequestHead) -> Int {
        var text = "\(head.method.rawValue) \(head.uri) HTTP/1.1\r\n"
        for header in head.headers { text += "\(header.name): \(header.value)\r\n" }
        return text.utf8.count
    }

    @Test("431 once the request line and header lines exceed max_header_bytes, not at the limit itself")
    func headerSectionLimitBoundary() throws {
        let gate = try UnitFixtures.gate(limits: #"{"max_header_bytes": 1024}"#)
        func head(padding: Int) -> HTTPRequestHead {
            UnitFixtures.request(
                .GET, "/health", [("Host", "api.test"), ("X-Pad", String(repeating: "p", count: padding))])
        }
        let base = Self.wireSize(head(padding: 0))
        let atLimit = head(padding: 1024 - base)
        #expect(Self.wireSize(atLimit) == 1024)
        #expect(gate.evaluate(atLimit).admission != nil)
        let overLimit = head(padding: 1025 - base)
        let response = try #require(gate.evaluate(overLimit).response)
        #expect(response.status == 431)
        #expect(response.errorCode == "headers_too_large")
    }

    @Test("431 counts each header line's overhead: many empty headers exceed the limit")
    func headerSectionLimitCountsManySmallHeaders() throws {
        let gate = try UnitFixtures.gate(limits: #"{"max_header_bytes": 1024}"#)
        // 300 × "A: \r\n" is 1500 bytes on the wire, though names and values hold only 300.
        let head = UnitFixtures.request(.GET, "/health", Array(repeating: ("A", ""), count: 300))
        #expect(gate.evaluate(head).response?.status == 431)
    }

    @Test("431 is answered before the path is looked at")
    func headerLimitComesBeforePathChecks() throws {
        let gate = try UnitFixtures.gate(limits: #"{"max_header_bytes": 1024}"#)
        let uri = "/../" + String(repeating: "a", count: 2000)
        #expect(gate.evaluate(UnitFixtures.request(.GET, uri)).response?.status == 431)
    }

    @Test("413 when Content-Length exceeds max_body_bytes; exactly max_body_bytes is admitted")
    func bodyLimitBoundary() throws {
        let gate = try UnitFixtures.gate(limits: #"{"max_body_bytes": 100}"#)
        let over = UnitFixtures.request(.POST, "/health", [("Host", "a"), ("content-LENGTH", "101")])
        let response = try #require(gate.evaluate(over).response)
        #expect(response.status == 413)
        #expect(response.errorCode == "body_too_large")
        let atLimit = UnitFixtures.request(.POST, "/health", [("Host", "a"), ("Content-Length", "100")])
        #expect(gate.evaluate(atLimit).admission != nil)
    }

    @Test("without max_body_bytes any Content-Length is admitted by the gate")
    func noBodyLimitAdmitsLargeBodies() throws {
        let gate = try UnitFixtures.gate(limits: "{}")
        let head = UnitFixtures.request(.POST, "/health", [("Host", "a"), ("Content-Length", "2147483647")])
        #expect(gate.evaluate(head).admission != nil)
    }

    // MARK: Transfer codings

    @Test("chunked is accepted in any letter case", arguments: ["chunked", "Chunked", "CHUNKED", " chunked "])
    func chunkedIsAccepted(coding: String) throws {
        let head = UnitFixtures.request(.POST, "/health", [("Host", "a"), ("Transfer-Encoding", coding)])
        #expect(try UnitFixtures.gate().evaluate(head).admission != nil)
    }

    @Test(
        "request smuggling: any transfer coding but a single chunked is refused with 400",
        arguments: [
            [("Transfer-Encoding", "gzip")], [("Transfer-Encoding", "gzip, chunked")],
            [("Transfer-Encoding", "chunked, chunked")], [("Transfer-Encoding", "identity")],
            [("Transfer-Encoding", "chunked"), ("transfer-encoding", "chunked")],
            [("Transfer-Encoding", "xchunked")], [("Transfer-Encoding", "chunked;x=1")],
        ])
    func otherTransferCodingsAreRefused(codings: [(String, String)]) throws {
        let head = UnitFixtures.request(.POST, "/health", [("Host", "a")] + codings)
        let response = try #require(try UnitFixtures.gate().evaluate(head).response)
        #expect(response.status == 400)
        #expect(response.body.contains("chunked transfer coding"))
    }

    @Test("request smuggling: an empty Transfer-Encoding is not chunked and is refused with 400")
    func emptyTransferEncodingIsRefused() throws {
        let gate = try UnitFixtures.gate()
        for value in ["", ","] {
            let head = UnitFixtures.request(.POST, "/health", [("Host", "a"), ("Transfer-Encoding", value)])
            // UpstreamRequestHead.make turns any Transfer-Encoding header into "Transfer-Encoding: chunked", so
            // the gate must not admit one that is not chunked. NIO's decoder accepts "Transfer-Encoding: " (empty)
            // beside "Content-Length: 5" and frames the body by the length.
            #expect(gate.evaluate(head).response?.status == 400, "Transfer-Encoding: \"\(value)\"")
        }
    }

    // MARK: Decision

    @Test("a Bearer token is handed over for verification exactly as sent")
    func bearerTokenIsHandedToVerification() throws {
        let head = UnitFixtures.request(.GET, "/items", [("Host", "a"), ("authorization", "bearer abc.def.ghi")])
        let admitted = try #require(try UnitFixtures.gate().evaluate(head).admission)
        guard case .verify(let token) = admitted.evaluation else {
            Issue.record("expected .verify, got \(admitted.evaluation)")
            return
        }
        #expect(token == "abc.def.ghi")
    }

    @Test("a token in the query of an absolute-form target is found, and the query still goes upstream")
    func queryTokenInAbsoluteForm() throws {
        let head = UnitFixtures.request(.GET, "http://h/items?access_token=t.o.k&x=1")
        let admitted = try #require(try UnitFixtures.gate().evaluate(head).admission)
        guard case .verify(let token) = admitted.evaluation else {
            Issue.record("expected .verify, got \(admitted.evaluation)")
            return
        }
        #expect(token == "t.o.k")
        #expect(admitted.upstreamTarget == "/items?access_token=t.o.k&x=1")
    }

    @Test("no token on a required route is denied 401 with a Bearer challenge; on auth none it is allowed")
    func missingTokenDecisions() throws {
        let gate = try UnitFixtures.gate()
        let required = try #require(gate.evaluate(UnitFixtures.request(.GET, "/items")).admission)
        guard case .decided(let decision) = required.evaluation else {
            Issue.record("expected a decision, got \(required.evaluation)")
            return
        }
        let response = try #require(gate.response(for: decision))
        #expect(response.status == 401)
        #expect(response.headers == [ProxyResponse.Header(name: "WWW-Authenticate", value: "Bearer")])
        #expect(response.errorCode == "token_required")

        // `auth: none` ignores even conflicting credentials.
        let conflicting = UnitFixtures.request(
            .GET, "/health?access_token=one", [("Host", "a"), ("Authorization", "Bearer two")])
        let open = try #require(gate.evaluate(conflicting).admission)
        guard case .decided(.allow(identity: let identity)) = open.evaluation else {
            Issue.record("expected allow, got \(open.evaluation)")
            return
        }
        #expect(identity == nil)
        #expect(gate.response(for: .allow(identity: nil)) == nil)
    }
}
