public import NIOCore
public import NIOHTTP1
import NIOPosix

/// A tiny HTTP/1.1 server whose every answer is a function of the request head: the admin listener, and the
/// demo's built-in backend. Bodies are ignored; keep-alive and HEAD are honoured.
public enum SmallHTTPServer {
    /// One answer: status, content type, body.
    public struct Answer: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: [UInt8]

        public init(status: HTTPResponseStatus, contentType: String, body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    /// Listens on `host:port` (0 picks a free port) and answers with `answer`.
    public static func start(
        host: String, port: Int, group: any EventLoopGroup,
        answer: @escaping @Sendable (HTTPRequestHead) -> Answer
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(answer: answer))
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    /// Answers each request once its end has arrived; the pipelining handler before it keeps them in order.
    final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let answer: @Sendable (HTTPRequestHead) -> Answer
        private var head: HTTPRequestHead?

        init(answer: @escaping @Sendable (HTTPRequestHead) -> Answer) {
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body:
                break
            case .end:
                guard let head else { return }
                self.head = nil
                let answer = answer(head)
                var headers = HTTPHeaders([
                    ("Content-Type", answer.contentType), ("Content-Length", String(answer.body.count)),
                    ("Cache-Control", "no-store"),
                ])
                if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
                context.write(
                    Self.wrapOutboundOut(
                        .head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))),
                    promise: nil)
                if head.method != .HEAD {
                    context.write(
                        Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))),
                        promise: nil)
                }
                let keepAlive = head.isKeepAlive
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                    if !keepAlive { context.close(promise: nil) }
                }
            }
        }
    }
}
