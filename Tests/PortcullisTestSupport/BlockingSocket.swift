import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A connected TCP client socket with blocking-style reads and writes, each wait bounded by a timeout.
///
/// The descriptor is non-blocking and every wait is a `poll`, so a peer that stops reading or never answers
/// ends in `RawHTTPError.timedOut` instead of a hung test. Reads go through one buffer so that a caller can
/// switch between lines, exact counts and "everything until close" on the same stream.
final class BlockingSocket: @unchecked Sendable {
    // @unchecked: `descriptor` is only read or changed while `lock` is held, which makes `interrupt()` safe from
    // any thread; everything else is used by one thread at a time (its owner's DedicatedThread).
    private let lock = NSLock()
    private var descriptor: Int32
    /// Received bytes; those in `start..<end` are not read yet. Raw memory rather than an array, because
    /// debug builds (the tests') run generic array code slowly, and a 50 MB body passes through here.
    private var storage = UnsafeMutableRawBufferPointer.allocate(
        byteCount: 2 * BlockingSocket.receiveSize, alignment: 1)
    private var start = 0
    private var end = 0
    /// The longest any single wait for the peer may take, in seconds.
    let timeout: Double

    private static let receiveSize = 64 * 1024

    private init(descriptor: Int32, timeout: Double) {
        self.descriptor = descriptor
        self.timeout = timeout
    }

    deinit {
        close()
        storage.deallocate()
    }

    /// Connects to `host` (a name or an address literal) within `timeout` seconds.
    static func connect(host: String, port: Int, timeout: Double) throws -> BlockingSocket {
        ignoreSIGPIPE()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = socketStreamType
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw RawHTTPError.malformed("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = RawHTTPError.connectionRefused(host: host, port: port)
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let address = next {
            next = address.pointee.ai_next
            do {
                return try connect(address.pointee, timeout: timeout, host: host, port: port)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private static func connect(
        _ address: addrinfo, timeout: Double, host: String, port: Int
    ) throws(RawHTTPError)
        -> BlockingSocket
    {
        let descriptor = socket(address.ai_family, address.ai_socktype, address.ai_protocol)
        guard descriptor >= 0 else { throw .system(call: "socket", errno: errno) }
        let connection = BlockingSocket(descriptor: descriptor, timeout: timeout)
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var one: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if systemConnect(descriptor, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { throw connection.connectError(errno, host: host, port: port) }
            let deadline = ContinuousClock.now + .seconds(timeout)
            guard try connection.wait(for: Int16(POLLOUT), until: deadline) else {
                throw .timedOut(waitingFor: "the connection to \(host):\(port)")
            }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &failure, &length)
            guard failure == 0 else { throw connection.connectError(failure, host: host, port: port) }
        }
        return connection
    }

    private func connectError(_ code: Int32, host: String, port: Int) -> RawHTTPError {
        code == ECONNREFUSED ? .connectionRefused(host: host, port: port) : .system(call: "connect", errno: code)
    }

    // MARK: Closing

    /// Shuts the connection down in both directions, so that a wait on another thread ends at once; the
    /// descriptor stays open (and its number reserved) until `close()`. Safe from any thread.
    func interrupt() {
        lock.withLock {
            if descriptor >= 0 { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    /// Half-closes: the peer reads end-of-stream, and can still answer.
    func shutdownWrite() throws(RawHTTPError) {
        let descriptor = try currentDescriptor()
        guard shutdown(descriptor, Int32(SHUT_WR)) == 0 else { throw .system(call: "shutdown", errno: errno) }
    }

    func close() {
        lock.withLock {
            if descriptor >= 0 {
                _ = systemClose(descriptor)
                descriptor = -1
            }
        }
    }

    private func currentDescriptor() throws(RawHTTPError) -> Int32 {
        let descriptor = lock.withLock { self.descriptor }
        guard descriptor >= 0 else { throw .closed }
        return descriptor
    }

    // MARK: Writing

    func sendAll(_ bytes: UnsafeRawBufferPointer, what: String) throws(RawHTTPError) {
        guard let base = bytes.baseAddress else { return }
        let descriptor = try currentDescriptor()
        var offset = 0
        while offset < bytes.count {
            let sent = send(descriptor, base + offset, bytes.count - offset, Int32(sendFlags))
            if sent >= 0 {
                offset += sent
                continue
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                // Idle time only: a slow reader that keeps taking bytes never times out.
                guard try wait(for: Int16(POLLOUT), until: .now + .seconds(timeout)) else {
                    throw .timedOut(waitingFor: "the peer to take \(what) (\(offset) of \(bytes.count) bytes sent)")
                }
            case EPIPE, ECONNRESET:
                throw .connectionReset(during: "sending \(what)")
            case let code:
                throw .system(call: "send", errno: code)
            }
        }
    }

    func sendAll(_ bytes: [UInt8], what: String) throws(RawHTTPError) {
        // withUnsafeBytes rethrows untyped errors, so the typed one is carried out in a Result.
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(RawHTTPError) in try sendAll(buffer, what: what) }
        }
        try result.get()
    }

    // MARK: Reading

    /// True when `poll` reports `events` (or an error or hang-up, which the next call reports) before `deadline`.
    private func wait(for events: Int16, until deadline: ContinuousClock.Instant) throws(RawHTTPError) -> Bool {
        let descriptor = try currentDescriptor()
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { return false }
            var request = pollfd(fd: descriptor, events: events, revents: 0)
            let milliseconds = Int32(clamping: Int((remaining / .milliseconds(1)).rounded(.up)))
            let ready = poll(&request, 1, milliseconds)
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { throw .system(call: "poll", errno: errno) }
        }
    }

    /// Appends what the peer sent next to the buffer. False at end of stream; throws when nothing arrives
    /// before `deadline` (default: `timeout` from now) or the peer reset the connection.
    private func fill(what: String, deadline: ContinuousClock.Instant? = nil) throws(RawHTTPError) -> Bool {
        let descriptor = try currentDescriptor()
        makeRoom()
        let deadline = deadline ?? .now + .seconds(timeout)
        while true {
            let received = recv(descriptor, storage.baseAddress! + end, storage.count - end, 0)
            let code = errno
            if received > 0 {
                end += received
                return true
            }
            if received == 0 { return false }
            switch code {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                guard try wait(for: Int16(POLLIN), until: deadline) else {
                    throw .timedOut(waitingFor: what)
                }
            case ECONNRESET:
                throw .connectionReset(during: what)
            default:
                throw .system(call: "recv", errno: code)
            }
        }
    }

    /// Ensures room for at least `receiveSize` more bytes after `end`, moving or growing the storage.
    private func makeRoom() {
        if start == end {
            start = 0
            end = 0
        }
        guard storage.count - end < Self.receiveSize else { return }
        let unread = end - start
        if storage.count - unread >= Self.receiveSize {
            storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: unread)
        } else {
            let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * storage.count, alignment: 1)
            larger.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: unread)
            storage.deallocate()
            storage = larger
        }
        start = 0
        end = unread
    }

    private var available: Int { end - start }

    private func unread(_ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.baseAddress! + start, count: count)
    }

    /// The next line without its CRLF (a bare LF is accepted too); nil when the stream ends before it starts.
    func readLine(limit: Int = 64 * 1024, what: String) throws(RawHTTPError) -> [UInt8]? {
        var searched = 0  // bytes after `start` known to hold no LF
        while true {
            if let found = memchr(storage.baseAddress! + start + searched, 0x0A, available - searched) {
                let newline = storage.baseAddress!.distance(to: found) - start
                let length = newline > 0 && unread(newline)[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
                let line = Array(unread(length))
                start += newline + 1
                return line
            }
            guard available <= limit else { throw .malformed("\(what): line longer than \(limit) bytes") }
            searched = available
            guard try fill(what: what) else {
                if available == 0 { return nil }
                throw .closedByPeer(during: what)
            }
        }
    }

    /// Exactly `count` bytes.
    func readExact(_ count: Int, what: String) throws(RawHTTPError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        try read(count, what: what) { bytes.append(contentsOf: $0.assumingMemoryBound(to: UInt8.self)) }
        return bytes
    }

    /// Exactly `count` bytes, handed to `sink` piece by piece as they arrive.
    func read(_ count: Int, what: String, into sink: (UnsafeRawBufferPointer) -> Void) throws(RawHTTPError) {
        var remaining = count
        while remaining > 0 {
            if available == 0 {
                guard try fill(what: what) else {
                    throw .closedByPeer(during: "\(what) (\(count - remaining) of \(count) bytes read)")
                }
            }
            let take = min(available, remaining)
            sink(unread(take))
            start += take
            remaining -= take
        }
    }

    /// Everything until the peer closes (a reset counts as a close), handed to `sink` as it arrives.
    func readToEnd(
        what: String, deadline: ContinuousClock.Instant? = nil, into sink: (UnsafeRawBufferPointer) -> Void
    )
        throws(RawHTTPError)
    {
        while true {
            if available > 0 {
                sink(unread(available))
                start = end
            }
            do {
                guard try fill(what: what, deadline: deadline) else { return }
            } catch .connectionReset {
                return
            }
        }
    }

    /// True when the peer closes or resets the connection before `deadline`. Bytes that arrive meanwhile are
    /// kept for later reads.
    func waitForClose(until deadline: ContinuousClock.Instant) -> Bool {
        do {
            while true {
                guard try fill(what: "the peer to close", deadline: deadline) else { return true }
            }
        } catch .connectionReset {
            return true
        } catch {
            return false
        }
    }
}

/// The peer vanishing must surface as EPIPE from `send`/`write`, not kill the test process.
func ignoreSIGPIPE() {
    _ = ignoringSIGPIPE
}

private let ignoringSIGPIPE: Void = {
    signal(SIGPIPE, SIG_IGN)
}()

#if canImport(Glibc)
    private let socketStreamType = Int32(SOCK_STREAM.rawValue)
    private let sendFlags = Int32(MSG_NOSIGNAL)
#else
    private let socketStreamType = SOCK_STREAM
    private let sendFlags: Int32 = 0
#endif

// The methods named `connect` and `close` hide the C functions inside the class.
private func systemConnect(_ descriptor: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    #if canImport(Glibc)
        Glibc.connect(descriptor, address, length)
    #else
        Darwin.connect(descriptor, address, length)
    #endif
}

private func systemClose(_ descriptor: Int32) -> Int32 {
    #if canImport(Glibc)
        Glibc.close(descriptor)
    #else
        Darwin.close(descriptor)
    #endif
}
