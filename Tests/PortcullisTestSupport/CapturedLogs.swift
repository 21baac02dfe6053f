import Foundation
public import Logging

/// Collects log records in memory, for tests that check what was logged (and what never is).
public final class CapturedLogs: @unchecked Sendable {
    // @unchecked: `records` is only touched under `lock`.
    public struct Record: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: Logger.Metadata
    }

    private let lock = NSLock()
    private var _records: [Record] = []

    public init() {}

    public var records: [Record] { lock.withLock { _records } }
    public var messages: [String] { records.map(\.message) }

    /// A logger that writes here, at every level.
    public var logger: Logger {
        Logger(label: "test") { _ in Handler(sink: self) }
    }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let record = Record(
                level: event.level, message: "\(event.message)",
                metadata: metadata.merging(event.metadata ?? [:]) { $1 })
            sink.lock.withLock { sink._records.append(record) }
        }
    }
}
