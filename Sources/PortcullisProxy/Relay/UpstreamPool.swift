import NIOCore
import NIOPosix

/// Where the upstream is and how to reach it.
public struct UpstreamAddress: Sendable, Hashable {
    public var host: String
    public var port: Int

    /// Parses `http://host:port` (a path, if any, is ignored: request paths are the client's).
    public init?(url: String) {
        var rest = Substring(url)
        guard rest.lowercased().hasPrefix("http://") else { return nil }
        rest = rest.dropFirst("http://".count)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var host = rest
        var port = 80
        if rest.hasPrefix("[") {
            // [v6]:port
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let parsed = Int(after.dropFirst()) else { return nil }
                port = parsed
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let parsed = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = parsed
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
    }
}

/// Idle keep-alive connections to the upstream, for one event loop. Only that loop touches it, and every
/// connection it makes runs on that loop too, so a request never hops threads.
final class UpstreamPool {
    let eventLoop: any EventLoop
    let address: UpstreamAddress
    let connectTimeout: TimeAmount
    let maxIdle: Int
    /// Most recently parked last: the warmest connection is reused first.
    private var idle: [UpstreamConnection] = []
    /// Replaced by a reload: nothing is parked any more.
    private var retired = false

    init(eventLoop: any EventLoop, address: UpstreamAddress, connectTimeout: TimeAmount, maxIdle: Int) {
        self.eventLoop = eventLoop
        self.address = address
        self.connectTimeout = connectTimeout
        self.maxIdle = maxIdle
    }

    var idleCount: Int { idle.count }

    /// The warmest parked connection that is still usable, if any. Handed over at once: the request needs no
    /// callback (nor the allocation of one) when a connection is parked, which is nearly always.
    func takeIdle() -> UpstreamConnection? {
        eventLoop.preconditionInEventLoop()
        while let connection = idle.popLast() {
            connection.parkedIn = nil
            if connection.isReusable { return connection }
        }
        return nil
    }

    /// A new connection, never a parked one: when none is parked, for upgrades, and for a retry after a parked
    /// one failed.
    func connect(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try UpstreamPipeline.configure(channel) }
            }
            .connect(host: address.host, port: address.port)
            .assumeIsolated()
            .whenComplete { result in
                completion(
                    result.flatMap { channel in
                        Result { try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self) }
                    })
            }
    }

    /// Parks a connection whose exchange ended cleanly, or closes it.
    func release(_ connection: UpstreamConnection) {
        eventLoop.preconditionInEventLoop()
        guard connection.isReusable, idle.count < maxIdle, !retired else {
            connection.close()
            return
        }
        connection.parkedIn = self
        idle.append(connection)
    }

    /// A parked connection closed (the upstream's keep-alive timeout, say): it is forgotten.
    func parkedConnectionClosed(_ connection: UpstreamConnection) {
        idle.removeAll { $0 === connection }
    }

    /// A reload replaced this pool: its idle connections close, and later releases close too.
    func retire() {
        retired = true
        closeAll()
    }

    func closeAll() {
        let connections = idle
        idle.removeAll()
        connections.forEach { $0.close() }
    }
}
