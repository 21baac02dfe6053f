import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import PortcullisConfig
import PortcullisCore
import PortcullisProxy

#if canImport(Glibc)
    import Glibc
#endif

/// The proxy on the shipped config.json, in front of a built-in backend, with a few real requests through it.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy on config.json in front of a built-in backend and send it a few requests.")

    @Option(help: "The configuration file (its upstream is replaced by the built-in backend).")
    var config = "config.json"

    @Flag(help: "Keep serving on the configuration's listen address afterwards, for your own requests.")
    var keepRunning = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: config) else {
            print("\(config): cannot be read (run this from the repository's folder, or pass --config)")
            throw ExitCode(1)
        }
        var configuration = try PortcullisConfiguration.decode(Array(data)).get()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await DemoBackend.start(group: group)
        let backendPort = backend.localAddress?.port ?? 0
        configuration.upstream.url = "http://127.0.0.1:\(backendPort)"
        var logger = Logger(label: "portcullis")
        logger.logLevel = .warning
        let listen = keepRunning ? configuration.listen : (host: "127.0.0.1", port: 0)
        let proxy = try await ProxyInstance.start(configuration: configuration, logger: logger, listen: listen)
        print("Portcullis on 127.0.0.1:\(proxy.port), policy from \(config), in front of a demo backend.\n")

        let valid = DemoData.token("a valid ES256 token")
        let requests: [(what: String, target: String, headers: [(String, String)])] = [
            ("a valid ES256 token", "/items", [("Authorization", "Bearer \(valid)")]),
            (
                "no token, a forged X-Postgres-Role: admin", "/public/menu",
                [("X-Postgres-Role", "admin")]
            ),
            ("no token", "/items", []),
            (
                "the token, expired", "/items",
                [("Authorization", "Bearer \(DemoData.token("the same token, expired"))")]
            ),
            (
                "the token with its role changed to admin", "/items",
                [("Authorization", "Bearer \(DemoData.token("the valid token with its role changed to admin"))")]
            ),
            (
                "an unsigned token (alg none)", "/items",
                [("Authorization", "Bearer \(DemoData.token("an unsigned token (alg none)"))")]
            ),
            ("a valid token, role webuser", "/admin/users", [("Authorization", "Bearer \(valid)")]),
        ]
        for request in requests {
            let response = try DemoClient.get(port: proxy.port, target: request.target, headers: request.headers)
            print(Self.describe(request.what, target: request.target, response))
        }

        if keepRunning {
            print(
                """

                Serving on \(configuration.listen.host):\(proxy.port) until Ctrl-C. Try:
                  curl -i http://127.0.0.1:\(proxy.port)/items
                  curl -i -H 'Authorization: Bearer \(valid)' http://127.0.0.1:\(proxy.port)/items
                """)
            await Serve.waitForTerminationSignal()
        }
        await proxy.stop()
        try? await backend.close()
        try? await group.shutdownGracefully()
    }

    static func describe(_ what: String, target: String, _ response: DemoClient.Response) -> String {
        let line = "\(response.status)  GET \(target), \(what)"
        if response.status == 200 {
            let seen = (try? JSONParser().parse(response.body))?["headers"]?.objectValue ?? [:]
            let forwarded = ["X-Postgres-Role", "X-Jwt-Audience", "X-User-Id", "X-User-Roles"].compactMap { name in
                seen[name]?.stringValue.map { "\(name): \($0)" }
            }
            return "ALLOWED  \(line)\n           the backend saw \(forwarded.joined(separator: ", "))"
        }
        let challenge = response.headers.first { $0.name.lowercased() == "www-authenticate" }?.value
        return "REFUSED  \(line)\n           \(challenge.map { "WWW-Authenticate: \($0)" } ?? "")  \(response.body)"
    }
}

extension DemoData {
    static func token(_ description: String) -> String {
        cases.first { $0.description == description }?.token ?? ""
    }
}

/// A one-request HTTP/1.1 client over a blocking socket: enough for the demo, with nothing between it and
/// the proxy that could rewrite the request.
enum DemoClient {
    struct Response {
        var status = 0
        var headers: [(name: String, value: String)] = []
        var body = ""
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func get(port: Int, target: String, headers: [(String, String)]) throws -> Response {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { throw Failure(description: "cannot connect to 127.0.0.1:\(port)") }
        var request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw Failure(description: "send() failed") }
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw Failure(description: "no response") }
        var response = Response()
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        response.status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            response.headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        response.body = String(text[split.upperBound...])
        return response
    }
}
