import NIOCore
import NIOHTTP1
import PortcullisCore
import PortcullisProxy

/// The backend of `portcullis demo`: answers every request with what it received, as JSON, so the demo can
/// show which headers Portcullis forwarded.
enum DemoBackend {
    /// Starts on 127.0.0.1 at a free port; returns the listening channel.
    static func start(group: any EventLoopGroup) async throws -> any Channel {
        try await SmallHTTPServer.start(host: "127.0.0.1", port: 0, group: group) { head in
            var headers: [String: JSONValue] = [:]
            // The demo prints what the backend saw; the token itself is not part of that.
            for (name, value) in head.headers where name.lowercased() != "authorization" {
                headers[name] = .string(value)
            }
            let body = JSONValue.object([
                "method": .string(head.method.rawValue), "target": .string(head.uri), "headers": .object(headers),
            ]).compactJSON
            return SmallHTTPServer.Answer(status: .ok, contentType: "application/json", body: Array(body.utf8))
        }
    }
}
