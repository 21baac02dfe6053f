import Foundation

/// A thread of its own that runs jobs one at a time, in order.
///
/// Blocking calls (sockets, pipes, child processes) go here instead of onto Swift concurrency's cooperative
/// pool, which has as many threads as cores (two on the CI machine): one test blocked in `recv` there would
/// stall every other task, including the proxy under test if it shares the pool.
final class DedicatedThread: @unchecked Sendable {
    // @unchecked: `jobs` and `finishing` are only touched while `condition` is locked.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var finishing = false

    init(name: String) {
        // The thread holds this object (not its owner) until `finish()`, so owners can still deinit.
        let thread = Thread { [self] in runJobs() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result. Throws `RawHTTPError.closed` after `finish()`.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = enqueue { continuation.resume(with: Result { try body() }) }
            if !accepted {
                continuation.resume(throwing: RawHTTPError.closed)
            }
        }
    }

    /// Queues `job`; false (and the job is dropped) once `finish()` was called.
    @discardableResult
    func enqueue(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.withLock {
            guard !finishing else { return false }
            jobs.append(job)
            condition.signal()
            return true
        }
    }

    /// Lets the thread end once the jobs queued so far have run; later jobs are refused.
    func finish(after lastJob: (@Sendable () -> Void)? = nil) {
        condition.withLock {
            guard !finishing else { return }
            if let lastJob { jobs.append(lastJob) }
            finishing = true
            condition.signal()
        }
    }

    private func runJobs() {
        while true {
            let job: (@Sendable () -> Void)? = condition.withLock {
                while jobs.isEmpty && !finishing {
                    condition.wait()
                }
                return jobs.isEmpty ? nil : jobs.removeFirst()
            }
            guard let job else { return }
            job()
        }
    }

    /// Runs `body` on a new thread that ends with it, for one-off blocking work such as starting a server.
    static func runDetached<T: Sendable>(
        name: String, _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = name
            thread.start()
        }
    }
}
