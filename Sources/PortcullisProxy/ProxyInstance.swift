public import Foundation
public import Logging
public import NIOCore
public import PortcullisConfig
public import PortcullisKeySource

/// A whole running proxy made from a configuration: the key sources, refreshing, and the server. What
/// `portcullis serve` runs, and what the end-to-end tests start in-process.
public final class ProxyInstance: Sendable {
    public let server: ProxyServer
    public let authenticator: TokenAuthenticator
    /// The admin listener, when `admin.listen` is configured.
    public let admin: AdminServer?

    private init(server: ProxyServer, authenticator: TokenAuthenticator, admin: AdminServer?) {
        self.server = server
        self.authenticator = authenticator
        self.admin = admin
    }

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
        do {
            try await server.start(host: address.host, port: address.port)
            if let adminAddress = adminListen ?? configuration.adminListen {
                admin = try await AdminServer.start(
                    host: adminAddress.host, port: adminAddress.port, group: server.group,
                    sources: .init(
                        authenticator: authenticator, metrics: metrics,
                        openConnections: { [server] in server.connectionCount }))
            }
        } catch {
            authenticator.stop()
            await admin?.stop()
            try? await server.stop()
            throw error
        }
        return ProxyInstance(server: server, authenticator: authenticator, admin: admin)
    }

    /// The port listened on.
    public var port: Int { server.localAddress?.port ?? 0 }

    public func stop() async {
        await admin?.stop()
        authenticator.stop()
        try? await server.stop()
    }
}
