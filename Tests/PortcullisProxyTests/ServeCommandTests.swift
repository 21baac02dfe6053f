import Foundation
import PortcullisCore
import PortcullisTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `portcullis serve`, the built binary started as a user starts it: a config file, a real upstream, a real
/// identity provider, a signal to stop.
@Suite("portcullis serve (the built binary)", .serialized)
struct ServeCommandTests {
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("portcullis")
    }

    @Test("serve relays an allowed request, refuses a bad one, and exits 0 on SIGTERM")
    func serveSmoke() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the package first")
        let jwks = try await offPool { try JWKSTestServer.start() }
        defer { jwks.stop() }
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let port = try await offPool { try freePort() }
        let configuration: [String: Any] = [
            "listen": "127.0.0.1:\(port)",
            "upstream": upstream.baseURL,
            "providers": [
                [
                    "name": "idp", "jwks_url": jwks.baseURL + "/jwks.json", "issuer": ProxyHarness.issuer,
                    "audiences": [ProxyHarness.audience],
                ]
            ],
            "role_claim_key": ".role",
            "rules": [["path": "/*", "auth": "required"]],
        ]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-\(UUID()).json")
        try JSONSerialization.data(withJSONObject: configuration).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let process = Process()
        process.executableURL = Self.binary
        // No subcommand: serve is the default.
        process.arguments = ["--config", file.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let token = try jwks.mint(["iss": ProxyHarness.issuer, "aud": ProxyHarness.audience, "role": "webuser"])
        var allowed: RawHTTPResponse?
        let deadline = ContinuousClock.now + .seconds(30)
        while allowed == nil && ContinuousClock.now < deadline {
            allowed = try? await RawHTTPConnection.request(
                port: port, target: "/items", headers: [("Authorization", "Bearer \(token)")], timeout: 5)
            if allowed?.status != 200 {
                allowed = nil
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let response = try #require(allowed, "the binary never answered 200")
        #expect(response.echoedRequest?.header("X-Postgres-Role") == "webuser")
        let refused = try await RawHTTPConnection.request(port: port, target: "/items")
        #expect(refused.status == 401)
        #expect(refused.header("WWW-Authenticate") == "Bearer")

        kill(process.processIdentifier, SIGTERM)
        let status = try await offPool {
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(status == 0)
    }
}
