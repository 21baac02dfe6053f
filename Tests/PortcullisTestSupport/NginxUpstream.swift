public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// nginx (Tests/Support/nginx_upstream.conf.template) on 127.0.0.1 as a second, independent upstream: `/`
/// answers `role=<X-Postgres-Role> user=<X-User-Id> host=<Host> uri=<request target>` as plain text, and
/// `/static/<file>` serves `root/<file>`.
///
/// ```swift
/// @Test(.enabled(if: NginxUpstream.isAvailable)) func viaNginx() async throws {
///     let nginx = try await NginxUpstream.start()
///     defer { nginx.stop() }
///     ...
/// }
/// ```
///
/// Everything nginx writes (pid, temp files) stays in `prefix`, a fresh temporary folder removed by `stop()`;
/// its error log goes to the test's stderr. Needs `python3`, which keeps nginx tied to the test process.
public final class NginxUpstream: @unchecked Sendable {
    // @unchecked: every stored property is set once in `init`; StdinTiedProcess guards its own stopping.
    public static let executablePath = "/usr/sbin/nginx"

    /// Whether nginx is installed, for `.enabled(if: NginxUpstream.isAvailable)`.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: executablePath)
    }

    public let port: Int
    /// The folder served under `/static/`.
    public let root: URL
    /// nginx's prefix: its configuration, pid file and temp folders.
    public let prefix: URL
    private let child: StdinTiedProcess

    private init(port: Int, root: URL, prefix: URL, child: StdinTiedProcess) {
        self.port = port
        self.root = root
        self.prefix = prefix
        self.child = child
    }

    deinit {
        stop()
    }

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts nginx on a free port serving `root` (default: an empty folder inside `prefix`) under
    /// `/static/`, and waits (on a thread of its own, not the cooperative pool) until it answers.
    public static func start(root: URL? = nil) async throws -> NginxUpstream {
        try await DedicatedThread.runDetached(name: "NginxUpstream.start") { try launch(root: root) }
    }

    /// nginx with another configuration template (placeholders as in Tests/Support/nginx_upstream.conf.template,
    /// plus `substitutions`). `GET /` must answer 200 with a body starting with `role=`: that is how readiness
    /// is told.
    public static func start(template: String, substitutions: [String: String]) async throws -> NginxUpstream {
        try await DedicatedThread.runDetached(name: "NginxUpstream.start") {
            try launch(root: nil, template: template, substitutions: substitutions)
        }
    }

    /// `start(root:)`, blocking the calling thread.
    public static func start(root: URL? = nil) throws -> NginxUpstream {
        try launch(root: root)
    }

    /// Stops nginx (fast shutdown), waits for it, and removes `prefix`. Safe to call more than once.
    public func stop() {
        child.stop(grace: 10)
        try? FileManager.default.removeItem(at: prefix)
    }

    private static let attempts = 5

    private static func launch(
        root: URL?, template: String? = nil, substitutions: [String: String] = [:]
    ) throws -> NginxUpstream {
        guard isAvailable else { throw ChildProcessFailure(description: "nginx is not installed at \(executablePath)") }
        let templateURL = repositoryRoot.appendingPathComponent("Tests/Support/nginx_upstream.conf.template")
        let template = try template ?? String(contentsOf: templateURL, encoding: .utf8)
        var failures: [String] = []
        // The free port is only known to be free when probed; another process may take it before nginx binds
        // it, and then nginx exits and a new port is tried.
        for _ in 0..<attempts {
            let prefix = FileManager.default.temporaryDirectory.appendingPathComponent(
                "portcullis-nginx-\(UUID().uuidString)", isDirectory: true)
            do {
                let port = try freePort()
                let served = root ?? prefix.appendingPathComponent("root", isDirectory: true)
                try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
                try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
                let rootPath = served.standardizedFileURL.path
                guard !rootPath.contains("\""), !rootPath.contains("\\") else {
                    throw ChildProcessFailure(description: "root path \(rootPath) cannot be quoted for nginx")
                }
                var configuration =
                    template
                    .replacingOccurrences(of: "@PORT@", with: String(port))
                    .replacingOccurrences(
                        of: "@ROOT@", with: rootPath.hasSuffix("/") ? String(rootPath.dropLast()) : rootPath
                    )
                    .replacingOccurrences(of: "@USER_DIRECTIVE@", with: geteuid() == 0 ? "user root;" : "")
                for (placeholder, value) in substitutions {
                    configuration = configuration.replacingOccurrences(of: placeholder, with: value)
                }
                let configurationURL = prefix.appendingPathComponent("nginx.conf")
                try configuration.write(to: configurationURL, atomically: true, encoding: .utf8)
                let child = try StdinTiedProcess(
                    executable: "/usr/bin/env",
                    arguments: [
                        "python3", "-c", supervisor, executablePath, "-p", prefix.path + "/", "-c",
                        configurationURL.path,
                        "-e", "stderr", "-g", "daemon off;",
                    ],
                    captureOutput: false)
                if let problem = waitUntilServing(port: port, child: child) {
                    child.stop(grace: 10)
                    throw ChildProcessFailure(description: problem)
                }
                return NginxUpstream(port: port, root: served, prefix: prefix, child: child)
            } catch {
                try? FileManager.default.removeItem(at: prefix)
                failures.append("\(error)")
            }
        }
        throw ChildProcessFailure(
            description: "nginx did not start in \(attempts) attempts: \(failures.joined(separator: "; "))")
    }

    /// nil once nginx answers its own `role=` line on `port`; otherwise why not.
    private static func waitUntilServing(port: Int, child: StdinTiedProcess) -> String? {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            guard child.isRunning else { return "nginx exited (see its error log above)" }
            do {
                let socket = try BlockingSocket.connect(host: "127.0.0.1", port: port, timeout: 2)
                defer { socket.close() }
                let request = RawHTTPConnection.requestBytes(
                    method: "GET", target: "/", host: "127.0.0.1", port: port,
                    headers: [("Connection", "close")], body: nil)
                try socket.sendAll(request, what: "the readiness request")
                let response = try RawHTTPConnection.readResponse(from: socket, requestMethod: "GET", hashBody: false)
                guard response.status == 200, response.bodyText.hasPrefix("role=") else {
                    return
                        "port \(port) is served by something else: \(response.status) \(response.bodyText.prefix(80))"
                }
                return nil
            } catch RawHTTPError.connectionRefused {
                usleep(20_000)
            } catch {
                return "readiness check failed: \(error)"
            }
        }
        return "nginx did not answer on port \(port) within 10 s"
    }

    /// A port on 127.0.0.1 that was free a moment ago.
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, socketStreamType, 0)
        guard descriptor >= 0 else { throw RawHTTPError.system(call: "socket", errno: errno) }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                guard bind(descriptor, pointer, length) == 0 else { return false }
                return getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw RawHTTPError.system(call: "bind", errno: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs nginx (argv[1:]) and stops it when stdin reaches EOF or on SIGTERM. nginx itself cannot notice
    /// that the test process died; this keeps it from outliving a crashed test run.
    private static let supervisor = """
        import os, signal, subprocess, sys, threading
        nginx = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
        def stop(*_):
            nginx.terminate()
        signal.signal(signal.SIGTERM, stop)
        def watch():
            # os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts the interpreter's exit.
            while os.read(0, 4096):
                pass
            stop()
        threading.Thread(target=watch, daemon=True).start()
        code = nginx.wait()
        sys.exit(code if code >= 0 else 128 - code)
        """
}

#if canImport(Glibc)
    private let socketStreamType = Int32(SOCK_STREAM.rawValue)
#else
    private let socketStreamType = SOCK_STREAM
#endif
