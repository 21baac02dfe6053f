// The floor of any SwiftNIO proxy on this machine: relays that skip everything a proxy is for, measured by
// bench/proxy.sh beside nginx and Portcullis, so that the cost of the stack itself has a figure of its own.
//
// usage: portcullis-relay-floor http|scan|tcp LISTEN_PORT UPSTREAM_PORT
//   http  NIO's HTTP/1.1 codec on both sides (llhttp and HTTPHeaders), each request head and body passed
//         through unchanged: no token, no rule, no header rewrite, no timers, no metrics.
//   scan  HTTP/1.1 read as bytes, the way Portcullis reads responses: each response through PortcullisWire's
//         reader, its forwarded head and body written on; each request head found by its empty line and
//         passed on as it came (Content-Length bodies only). What a proxy on SwiftNIO with a codec of its own
//         pays at least.
//   tcp   bytes glued between the client and its own upstream connection: no HTTP at all. What any proxy
//         written on NIOPosix pays for two sockets, whatever it does with the bytes.
// Not a product and not safe: it trusts the client and the upstream entirely. One event loop per core, one
// upstream connection per client connection (wrk's keep-alive connections make that a pool of 64).

import NIOCore
import NIOHTTP1
import NIOPosix
import PortcullisWire

enum Mode: String {
    case http
    case scan
    case tcp
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let mode = Mode(rawValue: arguments[1]), let listenPort = Int(arguments[2]),
    let upstreamPort = Int(arguments[3])
else {
    print("usage: portcullis-relay-floor http|scan|tcp LISTEN_PORT UPSTREAM_PORT")
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

    /// Connects `client` to an upstream connection of its own, each side a single handler that writes to the
    /// other's context. Runs once per connection, so its generics cost nothing per request.
    func pair(
        _ client: any Channel, _ clientSide: some PartneredHandler, _ upstreamSide: some PartneredHandler
    )
        -> EventLoopFuture<Void>
    {
        connect(on: client.eventLoop) { upstreamChannel in
            try upstreamChannel.pipeline.syncOperations.addHandler(upstreamSide)
        }.flatMapThrowing { upstreamChannel in
            try client.pipeline.syncOperations.addHandler(clientSide)
            clientSide.partner = try upstreamChannel.pipeline.syncOperations.context(handler: upstreamSide)
            upstreamSide.partner = try client.pipeline.syncOperations.context(handler: clientSide)
        }
    }
}

/// A side of a relay that writes what it reads to its partner channel's last handler.
protocol PartneredHandler: ChannelHandler, Sendable {
    var partner: ChannelHandlerContext? { get set }
}
let upstream = Upstream(port: upstreamPort)

let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        // The http case is written out: one generic helper building it and the others measured about 3 µs
        // of user time per request slower (A/B, one sitting), and this program's figure has to be the floor.
        switch mode {
        case .tcp:
            return upstream.pair(client, Glue<RawBytes>(), Glue<RawBytes>())
        case .scan:
            return upstream.pair(client, ScannedRequests(), ReadResponses())
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
final class Glue<Relayed: RelayedMessage>: ChannelInboundHandler, PartneredHandler, @unchecked Sendable {
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

/// The client's side of `scan`: each request head is found by its empty line and passed on as it came, then
/// its Content-Length body. Trusts the client entirely: a floor, not a parser.
final class ScannedRequests: ChannelInboundHandler, PartneredHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    var partner: ChannelHandlerContext?
    private var unread: ByteBuffer?
    private var bodyRemaining = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data).after(taking: &unread)
        while bytes.readableBytes > 0 {
            if bodyRemaining > 0 {
                let count = min(bodyRemaining, bytes.readableBytes)
                bodyRemaining -= count
                partner?.write(NIOAny(bytes.readSlice(length: count)!), promise: nil)
                continue
            }
            guard let (length, contentLength) = Self.head(in: bytes) else {
                unread = bytes
                return
            }
            bodyRemaining = contentLength
            partner?.write(NIOAny(bytes.readSlice(length: length)!), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close(promise: nil)
        partner = nil
    }

    /// The length of the head at the front of `bytes` and its Content-Length, or nil before its empty line.
    private static func head(in bytes: ByteBuffer) -> (length: Int, contentLength: Int)? {
        bytes.withUnsafeReadableBytes { raw -> (Int, Int)? in
            var contentLength = 0
            var lineStart = 0
            for index in raw.indices where raw[index] == UInt8(ascii: "\n") {
                if index == lineStart + 1 { return (index + 1, contentLength) }
                let line = UnsafeRawBufferPointer(rebasing: raw[lineStart..<index])
                if line.count > lengthName.count, zip(line, lengthName).allSatisfy({ $0 | 0x20 == $1 }) {
                    contentLength = line.dropFirst(lengthName.count).reduce(0) { value, byte in
                        (0x30...0x39).contains(byte) ? value * 10 + Int(byte - 0x30) : value
                    }
                }
                lineStart = index + 1
            }
            return nil
        }
    }

    private static let lengthName = Array("content-length:".utf8)
}

/// The upstream's side of `scan`: responses read by PortcullisWire's reader, as Portcullis reads them.
final class ReadResponses: ChannelInboundHandler, PartneredHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    var partner: ChannelHandlerContext?
    private var reader = UpstreamResponseReader()
    private var unread: ByteBuffer?
    private var chunked = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data).after(taking: &unread)
        do {
            while let event = try reader.read(&bytes, allocator: context.channel.allocator) {
                switch event {
                case .head(let head):
                    chunked = head.framing == .chunked || head.framing == .untilClose
                    partner?.write(NIOAny(head.forwarded), promise: nil)
                    let end = ResponseBytes.headEnd(framing: chunked ? .chunked : .asIs, closing: false)
                    partner?.write(NIOAny(end), promise: nil)
                case .body(let body):
                    if chunked {
                        partner?.write(
                            NIOAny(ChunkedFraming.chunkSize(body.readableBytes, allocator: context.channel.allocator)),
                            promise: nil)
                        partner?.write(NIOAny(body), promise: nil)
                        partner?.write(NIOAny(ChunkedFraming.chunkEnd), promise: nil)
                    } else {
                        partner?.write(NIOAny(body), promise: nil)
                    }
                case .end(let trailers):
                    if chunked {
                        partner?.write(
                            NIOAny(ChunkedFraming.lastChunk(trailers: trailers, allocator: context.channel.allocator)),
                            promise: nil)
                    }
                }
            }
        } catch {
            context.close(promise: nil)
            return
        }
        if bytes.readableBytes > 0 { unread = bytes }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close(promise: nil)
        partner = nil
    }
}

extension ByteBuffer {
    /// These bytes after the `earlier` ones a handler kept from its last read, which it no longer keeps.
    fileprivate func after(taking earlier: inout ByteBuffer?) -> ByteBuffer {
        guard var joined = earlier else { return self }
        earlier = nil
        var bytes = self
        joined.writeBuffer(&bytes)
        return joined
    }
}
