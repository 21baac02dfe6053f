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
        let stack = try await IdentityStack.start()
        defer { stack.stop() }
        let port = stack.port
        let configuration: [String: Any] = [
            "listen": "127.0.0.1:\(port)",
            "upstream": stack.upstream.baseURL,
            "providers": [stack.provider],
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

        let token = try stack.mint(["role": "webuser"])
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

    @Test("SIGHUP: a bad configuration is refused and the old one serves; a good one is swapped in")
    func sighupReload() async throws {
        let server = try await Self.startBinary(rules: [["path": "/*", "auth": "required"]])
        defer { server.stop() }
        #expect(try await RawHTTPConnection.request(port: server.port, target: "/items").status == 401)

        try Data(#"{"listen": "127.0.0.1:1", "colour": "blue"}"#.utf8).write(to: server.file)
        kill(server.process.processIdentifier, SIGHUP)
        try await Task.sleep(for: .milliseconds(500))
        #expect(server.process.isRunning)
        #expect(try await RawHTTPConnection.request(port: server.port, target: "/items").status == 401)

        try server.writeConfiguration(rules: [["path": "/*", "auth": "optional"]])
        kill(server.process.processIdentifier, SIGHUP)
        var status = 0
        let deadline = ContinuousClock.now + .seconds(10)
        while status != 200 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            status = try await RawHTTPConnection.request(port: server.port, target: "/items").status
        }
        #expect(status == 200)
        let log = server.log()
        #expect(log.contains("reload refused"))
        #expect(log.contains("colour: unknown key"))
        #expect(log.contains("reloaded"))
    }

    @Test("SIGTERM during a slow request: it finishes, new connections are refused, and the exit status is 0")
    func sigtermDrains() async throws {
        let server = try await Self.startBinary(rules: [["path": "/*", "auth": "optional"]])
        defer { server.stop() }
        let slow = Task { try await RawHTTPConnection.request(port: server.port, target: "/slow/1.5") }
        try await Task.sleep(for: .milliseconds(400))
        kill(server.process.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(300))
        await #expect(throws: (any Error).self) {
            try await RawHTTPConnection.request(port: server.port, target: "/items", timeout: 2)
        }
        #expect(try await slow.value.status == 200)
        let status = try await offPool {
            server.process.waitUntilExit()
            return server.process.terminationStatus
        }
        #expect(status == 0)
    }

    @Test("keygen → token → a request through the proxy: a whole local stack without an identity provider")
    func keygenTokenThroughTheProxy() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the package first")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stack-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let keygen = try await offPool { try Self.runBinary(["keygen", "--alg", "ES256", "--out", folder.path]) }
        #expect(keygen.status == 0)
        let provider = try JSONParser().parse(keygen.output)
        let upstream = try await EchoUpstream.start()
        defer { upstream.stop() }
        let port = try await offPool { try freePort() }
        let configuration: JSONValue = [
            "listen": .string("127.0.0.1:\(port)"), "upstream": .string(upstream.baseURL), "providers": [provider],
            "role_claim_key": ".role", "rules": [["path": "/*", "auth": "required"]],
        ]
        let file = folder.appendingPathComponent("config.json")
        try Data(configuration.compactJSON.utf8).write(to: file)
        let minted = try await offPool {
            try Self.runBinary([
                "token", "--key", folder.appendingPathComponent("private.jwk").path, "--claims",
                #"{"role":"api_user"}"#, "--ttl", "15m",
            ])
        }
        #expect(minted.status == 0)
        let token = minted.output.trimmingCharacters(in: .whitespacesAndNewlines)

        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["serve", "--config", file.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var response: RawHTTPResponse?
        let deadline = ContinuousClock.now + .seconds(30)
        while response?.status != 200 && ContinuousClock.now < deadline {
            response = try? await RawHTTPConnection.request(
                port: port, target: "/items", headers: [("Authorization", "Bearer \(token)")], timeout: 5)
            if response?.status != 200 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(response?.status == 200)
        #expect(response?.echoedRequest?.header("X-Postgres-Role") == "api_user")
        #expect(try await RawHTTPConnection.request(port: port, target: "/items").status == 401)
    }

    static func runBinary(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("--log-format json: every line is one JSON object; the access line carries the request's fields")
    func jsonLogs() async throws {
        let server = try await Self.startBinary(
            rules: [["path": "/*", "auth": "optional"]], arguments: ["--log-format", "json"])
        defer { server.stop() }
        _ = try await RawHTTPConnection.request(
            port: server.port, target: "/items?q=secret", headers: [("X-Request-Id", "json-log-1")])
        kill(server.process.processIdentifier, SIGTERM)
        _ = try await offPool { server.process.waitUntilExit() }
        let lines = server.log().split(separator: "\n")
        #expect(!lines.isEmpty)
        var access: JSONValue?
        for line in lines {
            let object = try JSONParser().parse(String(line))
            #expect(object["time"]?.stringValue != nil && object["level"]?.stringValue != nil)
            if object["request_id"] == "json-log-1" { access = object }
        }
        let entry = try #require(access)
        #expect(entry["logger"] == "portcullis.access")
        #expect(entry["path"] == "/items")
        #expect(entry["status"] == "200")
        #expect(entry["decision"] == "allowed" && entry["reason"] == "anonymous")
        #expect(!server.log().contains("q=secret"))
    }

    /// What the built binary serves between: an identity provider (the JWKS server, minting with joserfc), an
    /// echo upstream, and a free port to listen on.
    struct IdentityStack {
        let jwks: JWKSTestServer
        let upstream: EchoUpstream
        let port: Int

        /// The provider entry of config.json for `jwks`, with the harness's issuer and audience.
        var provider: [String: Any] {
            [
                "name": "idp", "jwks_url": jwks.baseURL + "/jwks.json", "issuer": ProxyHarness.issuer,
                "audiences": [ProxyHarness.audience],
            ]
        }

        static func start() async throws -> IdentityStack {
            let jwks = try await offPool { try JWKSTestServer.start() }
            do {
                return IdentityStack(
                    jwks: jwks, upstream: try await EchoUpstream.start(), port: try await offPool { try freePort() })
            } catch {
                jwks.stop()
                throw error
            }
        }

        /// A token from `jwks` for the harness's issuer and audience.
        func mint(_ claims: [String: Any], ttl: Int = 300) throws -> String {
            var claims = claims
            claims["iss"] = ProxyHarness.issuer
            claims["aud"] = ProxyHarness.audience
            return try jwks.mint(claims, ttl: ttl)
        }

        func stop() {
            upstream.stop()
            jwks.stop()
        }
    }

    /// The built binary serving a config file of its own in front of an echo upstream.
    final class RunningBinary: @unchecked Sendable {
        let process = Process()
        let file: URL
        let logFile: URL
        let port: Int
        let upstream: EchoUpstream

        init(port: Int, upstream: EchoUpstream) {
            self.port = port
            self.upstream = upstream
            file = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-\(UUID()).json")
            logFile = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-\(UUID()).log")
        }

        func writeConfiguration(rules: [[String: Any]]) throws {
            let configuration: [String: Any] = [
                "listen": "127.0.0.1:\(port)", "upstream": upstream.baseURL,
                "providers": [["name": "local", "secret_env": "PORTCULLIS_TEST_SECRET"]],
                "rules": rules, "drain_timeout": "10s",
            ]
            try JSONSerialization.data(withJSONObject: configuration).write(to: file)
        }

        func log() -> String {
            (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        }

        func stop() {
            if process.isRunning { process.terminate() }
            upstream.stop()
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(at: logFile)
        }
    }

    static func startBinary(rules: [[String: Any]], arguments: [String] = []) async throws -> RunningBinary {
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the package first")
        let upstream = try await EchoUpstream.start()
        let server = RunningBinary(port: try await offPool { try freePort() }, upstream: upstream)
        try server.writeConfiguration(rules: rules)
        _ = FileManager.default.createFile(atPath: server.logFile.path, contents: nil)
        server.process.executableURL = binary
        server.process.arguments = ["serve", "--config", server.file.path] + arguments
        var environment = ["PORTCULLIS_TEST_SECRET": String(repeating: "k", count: 48)]
        // Sanitizer settings (CI's second pass) reach the binary too, or it would run with their defaults.
        for (name, value) in ProcessInfo.processInfo.environment where name.hasSuffix("SAN_OPTIONS") {
            environment[name] = value
        }
        server.process.environment = environment
        server.process.standardOutput = FileHandle.nullDevice
        server.process.standardError = try FileHandle(forWritingTo: server.logFile)
        try server.process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if (try? await RawHTTPConnection.request(port: server.port, target: "/health", timeout: 2)) != nil {
                return server
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        server.stop()
        throw ServeFailure(description: "the binary never answered: \(server.log())")
    }

    struct ServeFailure: Error, CustomStringConvertible {
        let description: String
    }
}
