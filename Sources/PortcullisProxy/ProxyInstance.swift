public import Foundation
public import Logging
import NIOConcurrencyHelpers
import NIOCore
public import PortcullisConfig
public import PortcullisKeySource

/// A whole running proxy made from a configuration: the key sources, refreshing, and the server. What
/// `portcullis serve` runs, and what the end-to-end tests start in-process.
public final class ProxyInstance: Sendable {
    public let server: ProxyServer
    /// The admin listener, when `admin.listen` is configured.
    public let admin: AdminServer?
    private let state: NIOLockedValueBox<State>

    private struct State: Sendable {
        var configuration: PortcullisConfiguration
        var authenticator: TokenAuthenticator
    }

    private init(
        server: ProxyServer, configuration: PortcullisConfiguration, authenticator: TokenAuthenticator,
        admin: AdminServer?
    ) {
        self.server = server
        self.admin = admin
        state = NIOLockedValueBox(State(configuration: configuration, authenticator: authenticator))
    }

    /// The key sources of the configuration in force.
    public var authenticator: TokenAuthenticator { state.withLockedValue { $0.authenticator } }

    public var configuration: PortcullisConfiguration { state.withLockedValue { $0.configuration } }

    public var metrics: ProxyMetrics { server.settings.metrics }

    /// Starts fetching keys and listening. `listen` overrides the configuration's address (tests use port 0).
    /// `adminListen` likewise overrides `admin.listen`.
    public static func start(
        configuration: PortcullisConfiguration, logger: Logger, accessLogger: Logger? = nil,
        listen: (host: String, port: Int)? = nil, adminListen: (host: String, port: Int)? = nil,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) async throws -> ProxyInstance {
        let authenticator = TokenAuthenticator(
            providers: configuration.providers, fetcher: CurlFetcher(), logger: logger)
        let metrics = ProxyMetrics()
        let settings = try ProxySettings(
            configuration: configuration, authorizer: Authorizer(authenticator: authenticator, metrics: metrics),
            metrics: metrics, logger: logger, accessLogger: accessLogger, clock: clock)
        authenticator.start()
        let server = ProxyServer(settings: settings)
        let address = listen ?? configuration.listen
        var admin: AdminServer?
        let instanceBox = InstanceBox()
        do {
            try await server.start(host: address.host, port: address.port)
            if let adminAddress = adminListen ?? configuration.adminListen {
                admin = try await AdminServer.start(
                    host: adminAddress.host, port: adminAddress.port, group: server.group,
                    sources: .init(
                        authenticator: { instanceBox.instance?.authenticator ?? authenticator }, metrics: metrics,
                        openConnections: { [server] in server.connectionCount }))
            }
        } catch {
            authenticator.stop()
            await admin?.stop()
            try? await server.stop()
            throw error
        }
        let instance = ProxyInstance(
            server: server, configuration: configuration, authenticator: authenticator, admin: admin)
        instanceBox.instance = instance
        return instance
    }

    /// The port listened on.
    public var port: Int { server.localAddress?.port ?? 0 }

    /// Swaps in a new configuration: connections accepted from now on use it, connections open now finish
    /// under the old one. Providers whose configuration did not change keep their keys. `listen` and
    /// `admin.listen` cannot change without a restart: such a reload is refused.
    public func reload(
        _ configuration: PortcullisConfiguration, logger: Logger, accessLogger: Logger? = nil
    )
        throws(ProxyStartupError)
    {
        let old = state.withLockedValue { $0 }
        guard configuration.listen == old.configuration.listen,
            configuration.adminListen.map({ "\($0.host):\($0.port)" })
                == old.configuration.adminListen.map({ "\($0.host):\($0.port)" }),
            configuration.mode == old.configuration.mode
        else {
            throw ProxyStartupError("listen, admin.listen and mode take effect only on a restart")
        }
        let current = server.settings
        let authenticator = TokenAuthenticator(
            providers: configuration.providers, fetcher: CurlFetcher(), logger: logger, reusing: old.authenticator)
        let settings = try ProxySettings(
            configuration: configuration,
            authorizer: Authorizer(authenticator: authenticator, metrics: current.metrics), metrics: current.metrics,
            logger: logger, accessLogger: accessLogger ?? current.accessLogger, clock: current.clock)
        authenticator.start()
        server.replaceSettings(settings)
        state.withLockedValue { $0 = State(configuration: configuration, authenticator: authenticator) }
        old.authenticator.stop(keeping: authenticator)
    }

    /// Graceful shutdown: stop accepting, let requests in flight finish for up to `timeout`, then stop.
    public func drain(timeout: Duration) async {
        await server.drain(timeout: timeout)
        await stop()
    }

    public func stop() async {
        await admin?.stop()
        authenticator.stop()
        try? await server.stop()
    }
}

/// Lets the admin endpoints read the instance made after them.
private final class InstanceBox: @unchecked Sendable {
    // Written once, before any admin request can be served on it.
    var instance: ProxyInstance?
}
