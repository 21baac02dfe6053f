// The floor of any SwiftNIO proxy on this machine: relays that skip everything a proxy is for, measured by
// bench/proxy.sh beside nginx and Portcullis, so that the cost of the stack itself has a figure of its own.
//
// usage: portcullis-relay-floor http|tcp LISTEN_PORT UPSTREAM_PORT
//   http  NIO's HTTP/1.1 codec on both sides (llhttp and HTTPHeaders, as Portcullis uses them), each request
//         head and body passed through unchanged: no token, no rule, no header rewrite, no timers, no metrics.
//   tcp   bytes glued between the client and its own upstream connection: no HTTP at all. What any proxy
//         written on NIOPosix pays for two sockets, whatever it does with the bytes.
// Not a product and not safe: it trusts the client and the upstream entirely. One event loop per core, one
// upstream connection per client connection (wrk's keep-alive connections make that a pool of 64).

import NIOCore
import NIOHTTP1
import NIOPosix

enum Mode: String {
    case http
    case tcp
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let mode = Mode(rawValue: arguments[1]), let listenPort = Int(arguments[2]),
    let upstreamPort = Int(arguments[3])
else {
    print("usage: portcullis-relay-floor http|tcp LISTEN_PORT UPSTREAM_PORT")
    exit(2)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)

/// Where each client connection's own upstream connection goes.
struct Upstream: Sendable {
    let port: Int

    /// Connects on the client's loop, with `configure` run on the new channel first.
    func connect(
        on loop: any EventLoop,
        _ configure: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try configure(channel) }
            }
            .connect(host: "127.0.0.1", port: port)
    }
}
let upstream = Upstream(port: upstreamPort)

let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        // Both cases are written out: one generic helper building either pair measured about 3 µs of user
        // time per request slower (A/B, one sitting), and this program's figure has to be the floor.
        switch mode {
        case .tcp:
            let clientSide = Glue<RawBytes>()
            let upstreamSide = Glue<RawBytes>()
            return upstream.connect(on: client.eventLoop) { upstreamChannel in
                try upstreamChannel.pipeline.syncOperations.addHandler(upstreamSide)
            }.flatMapThrowing { upstreamChannel in
                try client.pipeline.syncOperations.addHandler(clientSide)
                clientSide.partner = try upstreamChannel.pipeline.syncOperations.context(handler: upstreamSide)
                upstreamSide.partner = try client.pipeline.syncOperations.context(handler: clientSide)
            }
        case .http:
            let clientSide = Glue<HTTPMessage<HTTPRequestHead>>()
            let upstreamSide = Glue<HTTPMessage<HTTPResponseHead>>()
            return upstream.connect(on: client.eventLoop) { upstreamChannel in
                try upstreamChannel.pipeline.syncOperations.addHandlers([
                    HTTPRequestEncoder(),
                    ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)),
                    upstreamSide,
                ])
            }.flatMapThrowing { upstreamChannel in
                let operations = client.pipeline.syncOperations
                try operations.addHandlers([
                    HTTPResponseEncoder(),
                    ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                    clientSide,
                ])
                clientSide.partner = try upstreamChannel.pipeline.syncOperations.context(handler: upstreamSide)
                upstreamSide.partner = try operations.context(handler: clientSide)
            }
        }
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()

print("relay floor (\(mode.rawValue)) on 127.0.0.1:\(listenPort) -> 127.0.0.1:\(upstreamPort)")
try server.closeFuture.wait()

/// One side of a relay: each message it reads goes to its partner channel, converted by `Relayed` (bytes stay
/// bytes; a decoded request or response part becomes the part the other side's encoder takes). Closing one
/// side closes the other. No backpressure: the benchmark's bodies are a few bytes.
final class Glue<Relayed: RelayedMessage>: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Relayed.Received

    /// The other channel's last handler context, set once both pipelines are built.
    var partner: ChannelHandlerContext?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.write(NIOAny(Relayed.convert(Self.unwrapInboundIn(data))), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close(promise: nil)
        partner = nil
    }
}

/// What a side of the relay reads, and what it hands its partner.
protocol RelayedMessage {
    associatedtype Received
    associatedtype Sent
    static func convert(_ message: Received) -> Sent
}

enum RawBytes: RelayedMessage {
    static func convert(_ message: ByteBuffer) -> ByteBuffer { message }
}

/// Request parts from the client's decoder to the upstream's encoder, or response parts the other way.
enum HTTPMessage<Head: Equatable>: RelayedMessage {
    static func convert(_ message: HTTPPart<Head, ByteBuffer>) -> HTTPPart<Head, IOData> {
        switch message {
        case .head(let head): .head(head)
        case .body(let body): .body(.byteBuffer(body))
        case .end(let trailers): .end(trailers)
        }
    }
}
