public import ArgumentParser
import Dispatch
import Foundation
public import Logging
import PortcullisConfig
import PortcullisProxy

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy (the default command).")

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
        guard let data = FileManager.default.contents(atPath: config) else {
            FileHandle.standardError.write(Data("\(config): cannot be read\n".utf8))
            throw ExitCode(1)
        }
        let configuration: PortcullisConfiguration
        switch PortcullisConfiguration.decode(Array(data)) {
        case .success(let decoded):
            configuration = decoded
        case .failure(let failure):
            var message = "\(config): \(failure.errors.count) error(s)\n"
            for error in failure.errors { message += "  \(error)\n" }
            FileHandle.standardError.write(Data(message.utf8))
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
            "address": "\(configuration.listen.host):\(proxy.port)", "upstream": "\(configuration.upstream.url)",
        ]
        if let admin = proxy.admin, let address = configuration.adminListen {
            metadata["admin"] = "\(address.host):\(admin.port)"
        }
        logger.notice("listening", metadata: metadata)
        await Self.waitForTerminationSignal()
        logger.notice("stopping")
        await proxy.stop()
    }

    /// Returns on SIGINT or SIGTERM.
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
