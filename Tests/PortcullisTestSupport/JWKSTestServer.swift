import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The scriptable JWKS / OpenID-discovery server (Tests/Support/jwks_server.py) as a child process: real
/// sockets on 127.0.0.1, controlled over the script's stdin/stdout with one JSON line per command and reply.
/// See the script's docstring for the commands and endpoints.
///
/// ```swift
/// let server = try JWKSTestServer.start()
/// defer { server.stop() }
/// try server.setMode(.hang, hangSeconds: 5)
/// let count = try server.jwksRequestCount()
/// ```
///
/// Requires `python3` with the `joserfc` package on the PATH. Set JWKS_SERVER_DEBUG=1 in the environment to
/// get the server's access log on stderr.
public final class JWKSTestServer: @unchecked Sendable {
    // @unchecked: the stored properties are set once in `init`, except `stopped` and the reader's buffer,
    // which are only touched while `lock` is held; commands are therefore serialised, as the protocol needs.

    /// How `GET /jwks.json` answers.
    public enum Mode: String, Sendable {
        /// 200 with the published keys.
        case ok
        /// 500 with a JSON error body.
        case error
        /// 200 with `<html>not json`.
        case garbage
        /// 200 with `{"keys": []}`.
        case empty
        /// Waits `hangSeconds`, then answers as `ok`; a later mode command releases waiting requests early.
        case hang
    }

    /// Why the server could not be started or did not answer as expected.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    public let baseURL: String
    /// `https://localhost:<port>` (same endpoints and state, over TLS), without a trailing slash; nil unless
    /// started with `start(tlsCertificate:key:)`.
    public let tlsBaseURL: String?

    private let process: Process
    /// The server's stdin; closing it is the server's signal to exit.
    private let input: FileHandle
    private let output: LineReader
    private let lock = NSLock()
    private var stopped = false

    /// How long a reply may take before the server is considered stuck.
    private static let replyTimeout: Duration = .seconds(15)

    private init(
        process: Process, input: FileHandle, output: LineReader, port: Int, baseURL: String, tlsBaseURL: String?
    ) {
        self.process = process
        self.input = input
        self.output = output
        self.port = port
        self.baseURL = baseURL
        self.tlsBaseURL = tlsBaseURL
    }

    deinit {
        stop()
    }

    /// Starts a fresh server on a free port and waits for its first line.
    public static func start() throws -> JWKSTestServer {
        try launch(arguments: [])
    }

    /// Like `start()`, but also serves the same endpoints over HTTPS at `tlsBaseURL`, with the PEM certificate
    /// (chain) and private key at these paths. The URL names `localhost`, so the certificate should be for
    /// DNS:localhost.
    public static func start(tlsCertificate: String, key: String) throws -> JWKSTestServer {
        try launch(arguments: ["--tls-cert", tlsCertificate, "--tls-key", key])
    }

    private static func launch(arguments: [String]) throws -> JWKSTestServer {
        // Writing to the pipe of a server that died must fail with EPIPE, not kill the test process.
        _ = ignoreSIGPIPE
        let script = repositoryRoot.appendingPathComponent("Tests/Support/jwks_server.py")
        guard FileManager.default.fileExists(atPath: script.path) else {
            throw Failure(description: "test server script not found at \(script.path)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", script.path] + arguments
        process.currentDirectoryURL = repositoryRoot
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        // stderr is inherited: the script only writes there when something is wrong (or with
        // JWKS_SERVER_DEBUG), and that should reach the test log.
        try process.run()
        let output = LineReader(fileDescriptor: stdout.fileHandleForReading.fileDescriptor, owner: stdout)
        let input = stdin.fileHandleForWriting

        func fail(_ message: String) -> Failure {
            try? input.close()
            process.terminate()
            process.waitUntilExit()
            return Failure(description: message)
        }
        guard let line = try? output.readLine(timeout: replyTimeout) else {
            throw fail("test server printed no first line (is python3 with joserfc installed?)")
        }
        guard let hello = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let port = hello["port"] as? Int, let baseURL = hello["base_url"] as? String
        else {
            throw fail("test server's first line is not {port, base_url}: \(line)")
        }
        let tlsBaseURL = hello["tls_base_url"] as? String
        guard arguments.isEmpty || tlsBaseURL != nil else {
            throw fail("test server's first line has no tls_base_url: \(line)")
        }
        return JWKSTestServer(
            process: process, input: input, output: output, port: port, baseURL: baseURL, tlsBaseURL: tlsBaseURL)
    }

    /// Sends one command and returns the reply object. Throws when the server answers `"ok": false`, does
    /// not answer within 15 s, or has stopped.
    @discardableResult
    public func command(_ command: [String: Any]) throws -> [String: Any] {
        let request = try JSONSerialization.data(withJSONObject: command) + Data("\n".utf8)
        return try lock.withLock {
            guard !stopped else { throw Failure(description: "test server already stopped") }
            try writeAll(request)
            let line = try output.readLine(timeout: Self.replyTimeout)
            guard let reply = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw Failure(description: "test server reply is not an object: \(line)")
            }
            guard reply["ok"] as? Bool == true else {
                throw Failure(description: "test server refused \(command): \(reply["error"] ?? "no reason")")
            }
            return reply
        }
    }

    /// Sets how `GET /jwks.json` answers (`hangSeconds` only matters for `.hang`; the server's default is 30).
    public func setMode(_ mode: Mode, hangSeconds: Double? = nil) throws {
        var command: [String: Any] = ["cmd": "mode", "mode": mode.rawValue]
        if let hangSeconds { command["hang_seconds"] = hangSeconds }
        try self.command(command)
    }

    /// Sets (or, with nil, removes) `Cache-Control` and `Expires` on `/jwks.json` responses.
    public func setHeaders(cacheControl: String?, expires: String? = nil) throws {
        try command([
            "cmd": "headers", "cache_control": cacheControl ?? NSNull(), "expires": expires ?? NSNull(),
        ])
    }

    /// HTTP requests served so far, by path (query strings stripped).
    public func requestCounts() throws -> [String: Int] {
        try command(["cmd": "stats"])["requests"] as? [String: Int] ?? [:]
    }

    /// `GET /jwks.json` requests served so far (whatever the mode answered).
    public func jwksRequestCount() throws -> Int {
        guard let count = try command(["cmd": "stats"])["total_jwks"] as? Int else {
            throw Failure(description: "stats reply without total_jwks")
        }
        return count
    }

    /// The User-Agent header of the latest HTTP request (over either listener), or nil if there was none.
    public func lastUserAgent() throws -> String? {
        try command(["cmd": "stats"])["last_user_agent"] as? String
    }

    /// Stops the server: closes its stdin (its signal to exit) and waits for it, terminating it if it takes
    /// longer than 5 s. Safe to call more than once; later commands throw.
    public func stop() {
        let wasRunning = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard wasRunning else { return }
        try? input.close()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline {
            usleep(20_000)
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    private func writeAll(_ data: Data) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let written = write(input.fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    throw Failure(
                        description: "could not write to the test server: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }

    private static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // PortcullisKeySourceTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    private static let ignoreSIGPIPE: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()
}

/// Reads newline-terminated lines from a pipe, waiting at most a given time for each.
private final class LineReader {
    private let fileDescriptor: Int32
    /// Keeps the pipe (and so the descriptor) open as long as the reader.
    private let owner: Pipe
    private var buffer: [UInt8] = []

    init(fileDescriptor: Int32, owner: Pipe) {
        self.fileDescriptor = fileDescriptor
        self.owner = owner
    }

    func readLine(timeout: Duration) throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                throw JWKSTestServer.Failure(description: "test server did not answer within \(timeout)")
            }
            var poller = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(clamping: remaining.components.seconds * 1000 + 1)
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }  // timed out: the deadline check above throws
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fileDescriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw JWKSTestServer.Failure(description: "test server closed its output") }
            buffer.append(contentsOf: chunk[..<count])
        }
    }
}

extension JWKSTestServer {
    /// A token signed by the server's current key (ES256, by Python joserfc), with `claims` as given plus
    /// `iat` and `exp` (now + `ttl`) unless given. `kid` picks another of its keys; `unpublished` signs with a
    /// fresh key the JWKS never shows.
    public func mint(
        _ claims: [String: Any], kid: String? = nil, ttl: Int = 300, unpublished: Bool = false
    )
        throws -> String
    {
        var command: [String: Any] = ["cmd": "mint", "claims": claims, "ttl": ttl]
        if let kid { command["kid"] = kid }
        if unpublished { command["unpublished"] = true }
        guard let token = try self.command(command)["token"] as? String else {
            throw Failure(description: "mint reply without a token")
        }
        return token
    }

    /// Publishes a new key (the next kid) and signs with it from now on; returns its kid.
    public func rotate() throws -> String {
        guard let kid = try command(["cmd": "rotate"])["kid"] as? String else {
            throw Failure(description: "rotate reply without a kid")
        }
        return kid
    }
}
