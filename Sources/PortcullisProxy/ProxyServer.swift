public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
import Synchronization

/// The listening side: one event loop per core, each with its own upstream pool and token cache.
public final class ProxyServer: Sendable {
    public let settings: ProxySettings
    let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    private let loopStates: [ObjectIdentifier: LoopState]
    private let openConnections = Atomic<Int>(0)
    private let listener = Mutex<(any Channel)?>(nil)

    public init(settings: ProxySettings, group: MultiThreadedEventLoopGroup? = nil) {
        self.settings = settings
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        ownsGroup = group == nil
        var states: [ObjectIdentifier: LoopState] = [:]
        for loop in self.group.makeIterator() {
            let pool = UpstreamPool(
                eventLoop: loop, address: settings.upstream, connectTimeout: settings.connectTimeout,
                maxIdle: settings.maxIdleUpstreamConnections)
            states[ObjectIdentifier(loop)] = LoopState(pool: pool, tokenCacheCapacity: settings.tokenCacheCapacity)
        }
        loopStates = states
    }

    /// The address actually bound (port 0 picks a free one).
    public var localAddress: SocketAddress? { listener.withLock { $0?.localAddress } }

    /// Connections open now.
    public var connectionCount: Int { openConnections.load(ordering: .relaxed) }

    public func start(host: String, port: Int) async throws {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialize(channel) }
            }
            .bind(host: host, port: port)
            .get()
        listener.withLock { $0 = channel }
    }

    /// Stops listening, closes every connection, and (when it made them) stops the event loops.
    public func stop() async throws {
        let channel = listener.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
        for loop in group.makeIterator() {
            guard let state = loopStates[ObjectIdentifier(loop)] else { continue }
            try? await loop.submit { state.pool.closeAll() }.get()
        }
        if ownsGroup { try await group.shutdownGracefully() }
    }

    private func initialize(_ channel: any Channel) throws {
        let count = openConnections.wrappingAdd(1, ordering: .relaxed).newValue
        channel.closeFuture.whenComplete { [self] _ in
            openConnections.wrappingSubtract(1, ordering: .relaxed)
        }
        if count > settings.maxConnections {
            // Over the limit: a short answer and the door closed, before any parsing.
            let body = #"{"error":"too_many_connections","message":"The proxy is at its connection limit"}"#
            var buffer = channel.allocator.buffer(capacity: 160)
            buffer.writeString(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "
                    + "\(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
            channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        guard let state = loopStates[ObjectIdentifier(channel.eventLoop)] else {
            throw ProxyStartupError("connection on an unknown event loop")
        }
        try ServerPipeline.configure(channel, settings: settings, loop: state)
    }
}

/// The client connection's pipeline.
enum ServerPipeline {
    static let decoderName = "request-decoder"
    /// Removed when a connection is upgraded, before the decoder (whose leftover bytes go to the glue).
    static let handlerNamesBeforeUpgrade = [
        "head-deadline", "response-encoder", "protocol-errors",
    ]

    static func configure(_ channel: any Channel, settings: ProxySettings, loop: LoopState) throws {
        let pipeline = channel.pipeline.syncOperations
        let deadline = HeadDeadline(timeout: settings.headerTimeout)
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = settings.gate.maxHeaderBytes
        limits.maxHeaderFieldSize = settings.gate.maxHeaderBytes
        try pipeline.addHandler(HeadDeadlineHandler(deadline: deadline), name: "head-deadline")
        try pipeline.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits)),
            name: decoderName)
        try pipeline.addHandler(HTTPResponseEncoder(), name: "response-encoder")
        // No HTTPServerPipelineHandler: ClientConnection queues pipelined requests itself, which keeps reads
        // flowing between requests (the handler pauses them after every request, two epoll_ctl calls each).
        try pipeline.addHandler(ProtocolErrorHandler(metrics: settings.metrics), name: "protocol-errors")
        try pipeline.addHandler(ClientConnection(settings: settings, loop: loop, headDeadline: deadline))
    }
}
