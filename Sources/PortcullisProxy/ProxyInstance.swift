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

    private init(server: ProxyServer, authenticator: TokenAuthenticator) {
        self.server = server
        self.authenticator = authenticator
    }

    /// Starts fetching keys and listening. `listen` overrides the configuration's address (tests use port 0).
    public static func start(
        configuration: PortcullisConfiguration, logger: Logger, listen: (host: String, port: Int)? = nil,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) async throws -> ProxyInstance {
        let authenticator = TokenAuthenticator(
            providers: configuration.providers, fetcher: CurlFetcher(), logger: logger)
        let settings = try ProxySettings(
            configuration: configuration, authorizer: Authorizer(authenticator: authenticator), logger: logger,
            clock: clock)
        authenticator.start()
        let server = ProxyServer(settings: settings)
        let address = listen ?? configuration.listen
        do {
            try await server.start(host: address.host, port: address.port)
        } catch {
            authenticator.stop()
            try? await server.stop()
            throw error
        }
        return ProxyInstance(server: server, authenticator: authenticator)
    }

    /// The port listened on.
    public var port: Int { server.localAddress?.port ?? 0 }

    public func stop() async {
        authenticator.stop()
        try? await server.stop()
    }
}
