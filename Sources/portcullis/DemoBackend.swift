import NIOCore
import NIOHTTP1
import NIOPosix
import PortcullisCore

/// The backend of `portcullis demo`: answers every request with what it received, as JSON, so the demo can
/// show which headers Portcullis forwarded.
enum DemoBackend {
    /// Starts on 127.0.0.1 at a free port; returns the listening channel.
    static func start(group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private var head: HTTPRequestHead?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body:
                break
            case .end:
                guard let head else { return }
                var headers: [String: JSONValue] = [:]
                for (name, value) in head.headers where name.lowercased() != "authorization" {
                    headers[name] = .string(value)
                }
                let body = JSONValue.object([
                    "method": .string(head.method.rawValue), "target": .string(head.uri),
                    "headers": .object(headers),
                ]).compactJSON
                var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
                buffer.writeString(body)
                let response = HTTPResponseHead(
                    version: .http1_1, status: .ok,
                    headers: ["Content-Type": "application/json", "Content-Length": String(body.utf8.count)])
                context.write(Self.wrapOutboundOut(.head(response)), promise: nil)
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
