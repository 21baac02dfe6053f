import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A child process whose stdin is a pipe from the test process. Closing the pipe is the child's signal to
/// exit, and the kernel closes it too when the test process dies, so no server outlives a crashed test run.
final class StdinTiedProcess: @unchecked Sendable {
    // @unchecked: `stopped` is only touched while `lock` is held; the rest is set once in `init`. The output
    // reader is used by one caller at a time (its owners serialise requests with their own locks).
    private let process: Process
    private let input: FileHandle
    /// Lines the child prints on stdout; nil when stdout is inherited.
    let output: PipeLineReader?
    private let lock = NSLock()
    private var stopped = false

    /// Starts `executable` with `arguments`. With `captureOutput`, stdout is readable line by line through
    /// `output`; otherwise it is inherited. stderr is always inherited, so a child's complaints reach the test log.
    init(executable: String, arguments: [String], captureOutput: Bool) throws {
        ignoreSIGPIPE()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        let stdin = Pipe()
        process.standardInput = stdin
        var stdout: Pipe?
        if captureOutput {
            stdout = Pipe()
            process.standardOutput = stdout
        }
        try process.run()
        self.process = process
        self.input = stdin.fileHandleForWriting
        self.output = stdout.map { PipeLineReader(pipe: $0) }
    }

    deinit {
        stop()
    }

    var isRunning: Bool { process.isRunning }

    /// Writes `line` and a newline to the child's stdin.
    func writeLine(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(input.fileDescriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                throw ChildProcessFailure(description: "cannot write to the child: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Closes the child's stdin and waits up to `grace` seconds for it to exit, then terminates it. Safe to
    /// call more than once.
    func stop(grace: Double = 5) {
        let wasRunning = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard wasRunning else { return }
        try? input.close()
        let deadline = ContinuousClock.now + .seconds(grace)
        while process.isRunning && ContinuousClock.now < deadline {
            usleep(10_000)
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// Why a test server could not be started or did not answer as expected.
public struct ChildProcessFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Reads newline-terminated lines from a pipe, waiting at most a given time for each.
final class PipeLineReader {
    private let pipe: Pipe
    private var buffer: [UInt8] = []

    init(pipe: Pipe) {
        self.pipe = pipe
    }

    func readLine(timeout: Double) throws -> String {
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let remaining = deadline - .now
            guard remaining > .zero else {
                throw ChildProcessFailure(description: "the child printed no line within \(timeout) s")
            }
            var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&request, 1, Int32(clamping: Int((remaining / .milliseconds(1)).rounded(.up))))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }  // timed out: the deadline check above throws
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw ChildProcessFailure(description: "the child closed its output") }
            buffer.append(contentsOf: chunk[..<count])
        }
    }
}
