import Foundation

/// The echo server (Tests/Support/echo_upstream.py) as a child process on 127.0.0.1: the upstream behind
/// the proxy in end-to-end tests. See the script's docstring for its routes; `RawHTTPResponse.echoedRequest`
/// decodes what its default route reports.
///
/// ```swift
/// let upstream = try await EchoUpstream.start()
/// defer { upstream.stop() }
/// let response = try await RawHTTPConnection.request(port: upstream.port, target: "/a")
/// let stats = try await upstream.stats()
/// ```
///
/// Requires `python3` on the PATH (standard library only). Set ECHO_UPSTREAM_DEBUG=1 in the environment to
/// get a line per request on stderr.
public final class EchoUpstream: @unchecked Sendable {
    // @unchecked: `port` and `child` are set once; `lock` keeps each stats command together with its reply.
    public let port: Int
    private let child: StdinTiedProcess
    private let lock = NSLock()

    /// How long the server may take to print its port, or to answer a command.
    private static let replyTimeout = 15.0

    private init(child: StdinTiedProcess, port: Int) {
        self.child = child
        self.port = port
    }

    deinit {
        stop()
    }

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts a server on a free port, waiting (on a thread of its own, not the cooperative pool) until it
    /// listens.
    public static func start() async throws -> EchoUpstream {
        try await DedicatedThread.runDetached(name: "EchoUpstream.start") { try launch() }
    }

    /// Starts a server on a free port, blocking the calling thread until it listens (about 0.1 s).
    public static func start() throws -> EchoUpstream {
        try launch()
    }

    private static func launch() throws -> EchoUpstream {
        let script = repositoryRoot.appendingPathComponent("Tests/Support/echo_upstream.py").path
        guard FileManager.default.fileExists(atPath: script) else {
            throw ChildProcessFailure(description: "echo upstream script not found at \(script)")
        }
        let child = try StdinTiedProcess(
            executable: "/usr/bin/env", arguments: ["python3", "-u", script], captureOutput: true)
        do {
            let line = try child.output!.readLine(timeout: replyTimeout)
            guard line.hasPrefix("listening "), let port = Int(line.dropFirst("listening ".count)) else {
                throw ChildProcessFailure(description: "echo upstream's first line is not 'listening <port>': \(line)")
            }
            return EchoUpstream(child: child, port: port)
        } catch {
            child.stop()
            throw error
        }
    }

    /// TCP connections accepted and requests read in full since the start.
    public func stats() throws -> (connections: Int, requests: Int) {
        let line = try lock.withLock {
            try child.writeLine("stats")
            return try child.output!.readLine(timeout: Self.replyTimeout)
        }
        guard let reply = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let connections = reply["connections"] as? Int, let requests = reply["requests"] as? Int
        else { throw ChildProcessFailure(description: "echo upstream's stats reply is unexpected: \(line)") }
        return (connections, requests)
    }

    /// `stats()`, waiting on a thread of its own.
    public func stats() async throws -> (connections: Int, requests: Int) {
        try await DedicatedThread.runDetached(name: "EchoUpstream.stats") { try self.stats() }
    }

    /// Stops the server (closing its stdin, its signal to exit) and waits for it. Safe to call more than once.
    public func stop() {
        child.stop()
    }
}
