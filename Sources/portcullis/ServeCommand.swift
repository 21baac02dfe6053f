public import ArgumentParser
import Dispatch
import Foundation
public import Logging
import PortcullisConfig
import PortcullisProxy
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run the proxy (the default command). SIGHUP re-reads the configuration; SIGTERM or SIGINT drain and stop.")

    @Option(help: "The configuration file.")
    var config = "config.json"

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: text (for a terminal) or json (one object per line).")
    var logFormat: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument {
        case text, json
    }

    func run() async throws {
        let configuration: PortcullisConfiguration
        switch Self.read(config) {
        case .success(let decoded):
            configuration = decoded
        case .failure(let errors):
            FileHandle.standardError.write(Data((errors.lines.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(1)
        }
        let level = logLevel
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "portcullis")
        let accessLogger = Logger(label: "portcullis.access")
        let proxy: ProxyInstance
        do {
            proxy = try await ProxyInstance.start(
                configuration: configuration, logger: logger, accessLogger: accessLogger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        var metadata: Logger.Metadata = [
            "address": "\(configuration.listen.host):\(proxy.port)", "mode": "\(configuration.mode.rawValue)",
        ]
        if configuration.mode == .proxy { metadata["upstream"] = "\(configuration.upstream.url)" }
        if let admin = proxy.admin, let address = configuration.adminListen {
            metadata["admin"] = "\(address.host):\(admin.port)"
        }
        logger.notice("listening", metadata: metadata)

        let reloads = ReloadOnHangup(path: config, proxy: proxy, logger: logger, accessLogger: accessLogger)
        let service = ProxyService(proxy: proxy, logger: logger)
        let group = ServiceGroup(
            services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        reloads.cancel()
    }

    /// The configuration file, or every error in it.
    static func read(_ path: String) -> Result<PortcullisConfiguration, ConfigurationFileErrors> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ConfigurationFileErrors(lines: ["\(path): cannot be read"]))
        }
        switch PortcullisConfiguration.decode(Array(data)) {
        case .success(let configuration):
            return .success(configuration)
        case .failure(let failure):
            return .failure(
                ConfigurationFileErrors(
                    lines: ["\(path): \(failure.errors.count) error(s)"] + failure.errors.map { "  \($0)" }))
        }
    }

    /// Returns on SIGINT or SIGTERM (for `demo --keep-running`).
    static func waitForTerminationSignal() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let queue = DispatchQueue(label: "portcullis.signals")
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let sources = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: queue) }
            let once = OnceFlag()
            for source in sources {
                source.setEventHandler {
                    guard once.set() else { return }
                    sources.forEach { $0.cancel() }
                    continuation.resume()
                }
                source.resume()
            }
        }
    }
}

/// The proxy as a swift-service-lifecycle service: it runs until a graceful shutdown is asked for
/// (SIGTERM, SIGINT), then stops accepting, lets requests in flight finish for up to `drain_timeout`, and
/// returns, so the process exits 0.
struct ProxyService: Service {
    let proxy: ProxyInstance
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let timeout = proxy.configuration.drainTimeout
        logger.notice(
            "draining", metadata: ["open_connections": "\(proxy.server.connectionCount)", "timeout_s": "\(timeout)"])
        await proxy.drain(timeout: .milliseconds(Int64(timeout * 1000)))
        logger.notice("stopped")
    }
}

/// SIGHUP re-reads the configuration file. A valid one is swapped in atomically (connections open now finish
/// under the old one); an invalid one is refused with every error logged, and the old one keeps serving.
final class ReloadOnHangup: @unchecked Sendable {
    // The source is set once in init and only cancelled after.
    private let source: any DispatchSourceSignal

    init(path: String, proxy: ProxyInstance, logger: Logger, accessLogger: Logger) {
        signal(SIGHUP, SIG_IGN)
        let queue = DispatchQueue(label: "portcullis.reload")
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        source.setEventHandler {
            switch Serve.read(path) {
            case .failure(let errors):
                logger.error(
                    "reload refused: the configuration has errors; the running one stays",
                    metadata: ["errors": .array(errors.lines.map { .string($0) })])
            case .success(let configuration):
                do {
                    try proxy.reload(configuration, logger: logger, accessLogger: accessLogger)
                    logger.notice("reloaded", metadata: ["config": "\(path)"])
                } catch {
                    logger.error("reload refused; the running configuration stays", metadata: ["error": "\(error)"])
                }
            }
        }
        source.resume()
    }

    func cancel() {
        source.cancel()
    }
}

/// Every error of a configuration file, one line each.
struct ConfigurationFileErrors: Error {
    let lines: [String]
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// True the first time only.
private final class OnceFlag: @unchecked Sendable {
    private var done = false
    private let lock = NSLock()

    func set() -> Bool {
        lock.withLock {
            defer { done = true }
            return !done
        }
    }
}
