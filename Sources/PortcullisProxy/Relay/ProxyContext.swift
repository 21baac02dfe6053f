public import Logging
public import NIOCore
public import PortcullisConfig
import PortcullisCore

/// Everything the relay needs that is the same for every connection: read-only and shared by all loops.
public struct ProxySettings: Sendable {
    public var gate: RequestGate
    public var authorizer: Authorizer
    public var forwarding: PortcullisConfiguration.Forwarding
    public var anonymousRole: String?
    public var upstream: UpstreamAddress
    /// How long the upstream may take to start its response before the client gets a 504.
    public var upstreamTimeout: TimeAmount
    public var connectTimeout: TimeAmount
    public var maxIdleUpstreamConnections: Int
    public var headerTimeout: TimeAmount
    public var idleTimeout: TimeAmount
    public var maxConnections: Int
    /// Verified tokens kept per event loop.
    public var tokenCacheCapacity: Int
    /// Seconds since the epoch; injected so tests can move time.
    public var clock: @Sendable () -> Double
    public var logger: Logger
    /// One line per request.
    public var accessLogger: Logger
    public var metrics: ProxyMetrics
    /// Decide and answer, never relay: the forward-auth mode.
    public var forwardAuth: Bool
    /// `UpstreamRequestHead.removedHeaders(forwarding:)`, computed once.
    let removedRequestHeaders: HeaderNameSet

    public init(
        configuration: PortcullisConfiguration, authorizer: Authorizer, metrics: ProxyMetrics, logger: Logger,
        accessLogger: Logger? = nil, clock: @escaping @Sendable () -> Double
    ) throws(ProxyStartupError) {
        guard let address = UpstreamAddress(url: configuration.upstream.url) else {
            throw ProxyStartupError("upstream must be an http://host:port URL")
        }
        gate = RequestGate(configuration: configuration)
        self.authorizer = authorizer
        forwarding = configuration.forward
        anonymousRole = configuration.anonymousRole
        upstream = address
        upstreamTimeout = .seconds(configuration.upstream.timeout)
        connectTimeout = .seconds(configuration.upstream.connectTimeout)
        maxIdleUpstreamConnections = configuration.upstream.maxIdle
        headerTimeout = .seconds(configuration.limits.headerTimeout)
        idleTimeout = .seconds(configuration.limits.idleTimeout)
        maxConnections = configuration.limits.maxConnections
        tokenCacheCapacity = 16_384
        self.clock = clock
        self.logger = logger
        self.accessLogger = accessLogger ?? logger
        self.metrics = metrics
        forwardAuth = configuration.mode == .forwardAuth
        removedRequestHeaders = UpstreamRequestHead.removedHeaders(forwarding: configuration.forward)
    }
}

public struct ProxyStartupError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

extension TimeAmount {
    static func seconds(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64((seconds * 1e9).rounded()))
    }
}

/// What one event loop keeps for all its connections: its upstream pool, its token cache, and its open
/// client connections (for a graceful drain). Made before the loops run, then touched only on its own loop
/// (the pool checks), hence unchecked.
final class LoopState: @unchecked Sendable {
    let pool: UpstreamPool
    var tokenCache: VerifiedTokenCache<TokenDigest>
    private var connections: [ObjectIdentifier: ClientConnection] = [:]
    private(set) var draining = false

    init(pool: UpstreamPool, tokenCacheCapacity: Int) {
        self.pool = pool
        tokenCache = VerifiedTokenCache(capacity: tokenCacheCapacity)
    }

    func register(_ connection: ClientConnection) {
        connections[ObjectIdentifier(connection)] = connection
        if draining { connection.closeWhenIdle() }
    }

    func unregister(_ connection: ClientConnection) {
        connections[ObjectIdentifier(connection)] = nil
    }

    /// Every connection closes as soon as it has no request in flight.
    func drainConnections() {
        draining = true
        for connection in Array(connections.values) { connection.closeWhenIdle() }
    }

    func closeConnections() {
        for connection in Array(connections.values) { connection.closeNow() }
    }
}
