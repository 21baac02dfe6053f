import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
import Synchronization

/// The listening side: one event loop per core, each with its own upstream pool and token cache.
///
/// The settings can be replaced while it runs (a reload): a new connection takes the settings current when
/// it is accepted, and keeps them to its end, so in-flight requests finish under the policy that admitted
/// them.
public final class ProxyServer: Sendable {
    let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    private let current: NIOLockedValueBox<Generation>
    /// Every generation's loop states that still have connections, for a drain to reach them. Held weakly: the
    /// current generation and each connection hold their state, so a replaced generation's state (its token
    /// caches, 16,384 slots per loop) goes with its last connection instead of piling up with every reload.
    private let allLoopStates = NIOLockedValueBox<[WeakLoopState]>([])
    private let openConnections = Atomic<Int>(0)
    private let listener = NIOLockedValueBox<(any Channel)?>(nil)

    /// Settings and the per-loop state made for them.
    private struct Generation: Sendable {
        let settings: ProxySettings
        let loopStates: [ObjectIdentifier: LoopState]
    }

    public init(settings: ProxySettings, group: MultiThreadedEventLoopGroup? = nil) {
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        ownsGroup = group == nil
        let generation = Self.generation(settings, group: self.group, previous: nil)
        current = NIOLockedValueBox(generation)
        allLoopStates.withLockedValue { $0 = generation.loopStates.values.map(WeakLoopState.init) }
    }

    private static func generation(
        _ settings: ProxySettings, group: MultiThreadedEventLoopGroup, previous: Generation?
    ) -> Generation {
        var states: [ObjectIdentifier: LoopState] = [:]
        for loop in group.makeIterator() {
            let pool: UpstreamPool
            if let previous, let old = previous.loopStates[ObjectIdentifier(loop)],
                previous.settings.upstream == settings.upstream,
                previous.settings.connectTimeout == settings.connectTimeout,
                previous.settings.maxIdleUpstreamConnections == settings.maxIdleUpstreamConnections
            {
                // Same upstream: the warm connections carry on.
                pool = old.pool
            } else {
                pool = UpstreamPool(
                    eventLoop: loop, address: settings.upstream, connectTimeout: settings.connectTimeout,
                    maxIdle: settings.maxIdleUpstreamConnections)
            }
            // A new token cache always: the policy that judged the cached tokens may have changed.
            states[ObjectIdentifier(loop)] = LoopState(pool: pool, tokenCacheCapacity: settings.tokenCacheCapacity)
        }
        return Generation(settings: settings, loopStates: states)
    }

    /// The settings new connections get.
    public var settings: ProxySettings { current.withLockedValue { $0.settings } }

    /// Replaces the settings for connections accepted from now on. Pools whose upstream changed are retired:
    /// their idle connections close, and connections returned to them later are closed instead of parked.
    public func replaceSettings(_ settings: ProxySettings) {
        let (previous, next) = current.withLockedValue { generation in
            let previous = generation
            generation = Self.generation(settings, group: group, previous: previous)
            return (previous, generation)
        }
        allLoopStates.withLockedValue { states in
            states.removeAll { $0.state == nil }
            states.append(contentsOf: next.loopStates.values.map(WeakLoopState.init))
        }
        for (key, old) in previous.loopStates where next.loopStates[key]?.pool !== old.pool {
            old.pool.eventLoop.execute { old.pool.retire() }
        }
    }

    /// The address actually bound (port 0 picks a free one).
    public var localAddress: SocketAddress? { listener.withLockedValue { $0?.localAddress } }

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
        listener.withLockedValue { $0 = channel }
    }

    /// Graceful shutdown: stops accepting, lets requests in flight finish (idle keep-alive connections close
    /// at once, busy ones after their response), and after `timeout` closes whatever is left.
    public func drain(timeout: Duration) async {
        let channel = listener.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
        let states = allLoopStates.withLockedValue { $0.compactMap(\.state) }
        for state in states {
            state.pool.eventLoop.execute { state.drainConnections() }
        }
        let deadline = ContinuousClock.now + timeout
        while connectionCount > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for state in states {
            state.pool.eventLoop.execute { state.closeConnections() }
        }
    }

    /// Stops listening, closes every connection, and (when it made them) stops the event loops.
    public func stop() async throws {
        await drain(timeout: .zero)
        let states = allLoopStates.withLockedValue { $0.compactMap(\.state) }
        for state in states {
            try? await state.pool.eventLoop.submit { state.pool.closeAll() }.get()
        }
        if ownsGroup { try await group.shutdownGracefully() }
    }

    private func initialize(_ channel: any Channel) throws {
        let count = openConnections.wrappingAdd(1, ordering: .relaxed).newValue
        channel.closeFuture.whenComplete { [self] _ in
            openConnections.wrappingSubtract(1, ordering: .relaxed)
        }
        let generation = current.withLockedValue { $0 }
        if count > generation.settings.maxConnections {
            // Over the limit: a short answer and the door closed, before any parsing.
            let body = #"{"error":"too_many_connections","message":"The proxy is at its connection limit"}"#
            var buffer = channel.allocator.buffer(capacity: 160)
            buffer.writeString(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "
                    + "\(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
            channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        guard let state = generation.loopStates[ObjectIdentifier(channel.eventLoop)] else {
            throw ProxyStartupError("connection on an unknown event loop")
        }
        try ServerPipeline.configure(channel, settings: generation.settings, loop: state)
    }
}

private struct WeakLoopState: Sendable {
    weak var state: LoopState?
}

/// The client connection's pipeline.
enum ServerPipeline {
    static func configure(_ channel: any Channel, settings: ProxySettings, loop: LoopState) throws {
        // One handler: ClientConnection reads requests from bytes (`ClientRequestReader`), queues pipelined
        // ones itself (NIO's pipelining handler pauses reads after every request, two epoll_ctl calls each) and
        // writes responses as bytes.
        try channel.pipeline.syncOperations.addHandler(
            ClientConnection(
                settings: settings, loop: loop, headDeadline: HeadDeadline(timeout: settings.headerTimeout)))
    }
}
