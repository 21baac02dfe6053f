import Foundation
import Logging
import NIOConcurrencyHelpers
import PortcullisConfig
import PortcullisCore
import PortcullisProxy
import PortcullisTestSupport
import Testing

/// A proxy under test, in this process, between a real client socket and a real upstream: the echo upstream
/// (Tests/Support/echo_upstream.py) behind it, and the scriptable JWKS server (Tests/Support/jwks_server.py)
/// as its identity provider, minting tokens with Python joserfc.
final class ProxyHarness: Sendable {
    let jwks: JWKSTestServer
    let upstream: EchoUpstream
    let proxy: ProxyInstance
    let logs: CapturedLogs

    static let issuer = "https://idp.test/"
    static let audience = "api"

    var port: Int { proxy.port }
    var adminPort: Int { proxy.admin?.port ?? 0 }
    /// Every token this harness minted, so `stop` can check that none reached a log.
    private let minted = NIOLockedValueBox<[String]>([])

    private init(jwks: JWKSTestServer, upstream: EchoUpstream, proxy: ProxyInstance, logs: CapturedLogs) {
        self.jwks = jwks
        self.upstream = upstream
        self.proxy = proxy
        self.logs = logs
    }

    /// The configuration the tests share; `adjust` edits the JSON object before it is read.
    static func configuration(
        upstreamURL: String, jwksURL: String, adjust: (inout [String: Any]) -> Void = { _ in }
    ) throws -> PortcullisConfiguration {
        var object: [String: Any] = [
            "listen": "127.0.0.1:8080",
            "upstream": ["url": upstreamURL, "timeout": "2s", "connect_timeout": "1s"],
            "token_sources": [
                ["header": "Authorization", "scheme": "Bearer"], ["cookie": "access_token"],
                ["query": "access_token"],
            ],
            "providers": [
                [
                    "name": "idp", "jwks_url": jwksURL, "issuer": issuer, "audiences": [audience],
                    "algorithms": ["ES256"], "unknown_kid_wait": "2s", "min_refresh_interval": "1s",
                ]
            ],
            "role_claim_key": ".role",
            "anonymous_role": "anon",
            "forward": [
                "role_header": "X-Postgres-Role", "audience_header": "X-Jwt-Audience",
                "claims": ["X-User-Id": "$.sub", "X-User-Roles": ["path": "$.realm_access.roles", "join": ","]],
                "claims_header": "X-Jwt-Claims",
            ],
            "rules": [
                ["path": "/health", "auth": "none"],
                ["path": "/public/*", "auth": "optional"],
                ["path": "/admin/*", "auth": "required", "roles": ["admin"]],
                ["path": "/scoped/*", "auth": "required", "scopes": ["read:items"]],
                ["path": "/*", "auth": "required"],
            ],
            "limits": ["max_body_bytes": 30_000_000, "header_timeout": "1s"],
        ]
        adjust(&object)
        let data = try JSONSerialization.data(withJSONObject: object)
        return try PortcullisConfiguration.decode(Array(data)).get()
    }

    static func start(adjust: (inout [String: Any]) -> Void = { _ in }) async throws -> ProxyHarness {
        let jwks = try await offPool { try JWKSTestServer.start() }
        let upstream = try await EchoUpstream.start()
        return try await start(jwks: jwks, upstream: upstream, upstreamURL: upstream.baseURL, adjust: adjust)
    }

    static func start(
        jwks: JWKSTestServer, upstream: EchoUpstream, upstreamURL: String, waitForReady: Bool = true,
        adjust: (inout [String: Any]) -> Void = { _ in }
    ) async throws -> ProxyHarness {
        let configuration = try configuration(
            upstreamURL: upstreamURL, jwksURL: jwks.baseURL + "/jwks.json", adjust: adjust)
        let logs = CapturedLogs()
        let proxy = try await ProxyInstance.start(
            configuration: configuration, logger: logs.logger, listen: ("127.0.0.1", 0),
            adminListen: ("127.0.0.1", 0))
        let deadline = ContinuousClock.now + .seconds(30)
        while waitForReady && !proxy.authenticator.isReady && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        return ProxyHarness(jwks: jwks, upstream: upstream, proxy: proxy, logs: logs)
    }

    /// A valid token: the right issuer and audience, `role` as given (none when nil), and `extra` claims.
    func token(
        role: String? = "webuser", sub: String = "user-1", _ extra: [String: Any] = [:], ttl: Int = 300
    )
        throws -> String
    {
        var claims: [String: Any] = ["iss": Self.issuer, "aud": Self.audience, "sub": sub]
        if let role { claims["role"] = role }
        claims.merge(extra) { $1 }
        let token = try jwks.mint(claims, ttl: ttl)
        minted.withLockedValue { $0.append(token) }
        return token
    }

    /// The log lines, with their metadata, as one text per record.
    var logText: [String] {
        logs.records.map { record in
            ([record.message] + record.metadata.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        }
    }

    /// Fails the running test when a token (or its signature, or its payload) this harness minted appears
    /// in any log line, at any level.
    func expectNoTokensInLogs(sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = logText
        for token in minted.withLockedValue({ $0 }) {
            let parts = token.split(separator: ".")
            for secret in [token[...]] + parts.dropFirst() where secret.count > 16 {
                if let line = lines.first(where: { $0.contains(secret) }) {
                    Issue.record(
                        "a token part appears in the logs: \(line.prefix(120))", sourceLocation: sourceLocation)
                }
            }
        }
    }

    /// One request on a fresh connection.
    func request(
        _ target: String, method: String = "GET", headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil, hashBody: Bool = false
    ) async throws -> RawHTTPResponse {
        try await RawHTTPConnection.request(
            port: port, method: method, target: target, headers: headers, body: body, hashBody: hashBody)
    }

    func bearer(_ token: String) -> (name: String, value: String) {
        ("Authorization", "Bearer \(token)")
    }

    func stop() async {
        expectNoTokensInLogs()
        await proxy.stop()
        upstream.stop()
        jwks.stop()
    }
}

/// Runs blocking work (spawning a process, waiting on a pipe) on its own thread, never on Swift's
/// cooperative pool, which has as many threads as cores: two here.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try work() })
        }
    }
}
