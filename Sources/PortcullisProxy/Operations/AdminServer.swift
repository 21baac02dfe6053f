import NIOCore
import NIOHTTP1
import PortcullisCore
import PortcullisKeySource

/// The admin listener: `/healthz`, `/readyz` and `/metrics`, on a port of its own so that it never faces
/// the public.
public final class AdminServer: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// What the endpoints read.
    struct Sources: Sendable {
        let authenticator: @Sendable () -> TokenAuthenticator
        let metrics: ProxyMetrics
        let openConnections: @Sendable () -> Int
    }

    static func start(
        host: String, port: Int, group: any EventLoopGroup, sources: Sources
    ) async throws -> AdminServer {
        let channel = try await SmallHTTPServer.start(host: host, port: port, group: group) { head in
            let path = head.uri[..<(head.uri.firstIndex(of: "?") ?? head.uri.endIndex)]
            let answer = respond(method: head.method, path: path, sources: sources)
            return SmallHTTPServer.Answer(status: answer.status, contentType: answer.contentType, body: answer.body)
        }
        return AdminServer(channel: channel)
    }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public func stop() async {
        try? await channel.close()
    }

    /// The answer to one admin request: pure, for a method and a path.
    static func respond(
        method: HTTPMethod, path: Substring, sources: Sources
    ) -> (
        status: HTTPResponseStatus, contentType: String, body: [UInt8]
    ) {
        guard method == .GET || method == .HEAD else {
            return (.methodNotAllowed, "application/json", Array(#"{"error":"method_not_allowed"}"#.utf8))
        }
        switch path {
        case "/healthz":
            return (.ok, "application/json", Array(#"{"status":"alive"}"#.utf8))
        case "/readyz":
            let readiness = sources.authenticator().readiness
            let ready = readiness.allSatisfy(\.ready)
            let body = JSONValue.object([
                "ready": .bool(ready),
                "providers": .array(
                    readiness.map { provider in
                        var fields: [String: JSONValue] = [
                            "provider": .string(provider.provider), "ready": .bool(provider.ready),
                        ]
                        if let reason = provider.reason { fields["reason"] = .string(reason) }
                        return .object(fields)
                    }),
            ]).compactJSON
            return (ready ? .ok : .serviceUnavailable, "application/json", Array(body.utf8))
        case "/metrics":
            let body = sources.metrics.exposition(
                authenticator: sources.authenticator(), openConnections: sources.openConnections())
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", body)
        default:
            return (.notFound, "application/json", Array(#"{"error":"not_found"}"#.utf8))
        }
    }
}
