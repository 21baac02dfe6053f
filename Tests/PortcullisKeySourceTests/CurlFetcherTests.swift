import Foundation
import PortcullisKeySource
import PortcullisTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `CurlFetcher` over real sockets, against the scriptable server in Tests/Support/jwks_server.py (one per
/// test, so tests can run in parallel), and over real files. No wall-clock time is asserted: orderings are.
@Suite("CurlFetcher (libcurl, real sockets)")
struct CurlFetcherTests {
    let fetcher = CurlFetcher()

    @Test("200: body, Cache-Control, Expires and Date of the response")
    func success() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        try server.setHeaders(cacheControl: "max-age=60", expires: "Thu, 01 Jan 2037 00:00:00 GMT")
        let url = server.baseURL + "/jwks.json"
        let response = try await fetcher.fetch(FetchRequest(url: url))
        #expect(response.status == 200)
        let document = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        #expect((document?["keys"] as? [Any])?.count == 1)
        #expect(response.cacheControl == "max-age=60")
        #expect(response.expires == "Thu, 01 Jan 2037 00:00:00 GMT")
        #expect(response.date != nil)
        #expect(response.effectiveURL == url)
        #expect(try server.jwksRequestCount() == 1)
    }

    @Test("HTTP error statuses are responses, not errors")
    func errorStatuses() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        try server.setMode(.error)
        let failed = try await fetcher.fetch(FetchRequest(url: server.baseURL + "/jwks.json"))
        #expect(failed.status == 500)
        #expect(String(decoding: failed.body, as: UTF8.self).contains("simulated server error"))
        let missing = try await fetcher.fetch(FetchRequest(url: server.baseURL + "/nowhere"))
        #expect(missing.status == 404)
    }

    @Test("a body that is not JSON is returned as it is")
    func garbage() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        try server.setMode(.garbage)
        let response = try await fetcher.fetch(FetchRequest(url: server.baseURL + "/jwks.json"))
        #expect(response.status == 200)
        #expect(response.body == Array("<html>not json".utf8))
    }

    @Test("a 2 MiB body is refused at the 1 MiB limit")
    func bigBody() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: server.baseURL + "/big"))
        }
        #expect(error?.kind == .bodyTooLarge)
        #expect(error?.message == "body larger than 1048576 bytes")
    }

    @Test("redirects are followed up to the limit, and refused beyond it")
    func redirects() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        try server.setHeaders(cacheControl: "max-age=60")
        // /redirect/2 → /redirect/1 → /redirect/0 → /jwks.json: three hops, the default limit.
        let response = try await fetcher.fetch(FetchRequest(url: server.baseURL + "/redirect/2"))
        #expect(response.status == 200)
        #expect(response.effectiveURL == server.baseURL + "/jwks.json")
        #expect(response.cacheControl == "max-age=60")  // the final response's own, once
        let counts = try server.requestCounts()
        #expect(counts["/redirect/2"] == 1 && counts["/redirect/1"] == 1 && counts["/redirect/0"] == 1)

        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: server.baseURL + "/redirect/5"))
        }
        #expect(error?.kind == .tooManyRedirects)
        #expect(error?.message.contains("too many redirects") == true)
        #expect(try server.jwksRequestCount() == 1)

        let noRedirects = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: server.baseURL + "/redirect/0", maxRedirects: 0))
        }
        #expect(noRedirects?.kind == .tooManyRedirects)
    }

    @Test("a server that never answers times out after the transfer timeout")
    func timeout() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        try server.setMode(.hang, hangSeconds: 30)
        let start = ContinuousClock.now
        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: server.baseURL + "/jwks.json", timeout: .seconds(1)))
        }
        let elapsed = ContinuousClock.now - start
        print("timeout: a 1 s transfer timeout fired after \(elapsed)")
        #expect(error?.kind == .timedOut)
        #expect(error?.message == "timed out after 1s")
        // Ordering, not speed: the fetch gave up while the server was still hanging (it hangs for 30 s). The
        // transfer may first queue behind other tests' hanging fetches in the shared pool.
        #expect(elapsed >= .milliseconds(500) && elapsed < .seconds(30))
        try server.setMode(.ok)  // releases the hanging handler
    }

    @Test("a closed port is a connection refused")
    func connectionRefused() async throws {
        let listener = try BoundSocket()
        defer { listener.release() }
        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: "http://127.0.0.1:\(listener.port)/jwks.json"))
        }
        #expect(error?.kind == .couldNotConnect)
        #expect(error?.message == "connection refused")
    }

    @Test("file:// reads a file with status 200; a missing file is an error")
    func files() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("portcullis-fetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("jwks.json")
        let content = Array(#"{"keys":[]}"#.utf8)
        try Data(content).write(to: file)

        let response = try await fetcher.fetch(FetchRequest(url: file.absoluteString))
        #expect(response.status == 200)
        #expect(response.body == content)
        #expect(response.cacheControl == nil)

        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: directory.appendingPathComponent("missing.json").absoluteString))
        }
        #expect(error?.kind == .fileNotReadable)
    }

    @Test("the body limit is exact: maxBodyBytes is accepted, one more byte is not")
    func bodyLimitBoundary() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-\(UUID().uuidString)")
        try Data(repeating: UInt8(ascii: "x"), count: 1000).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let exact = try await fetcher.fetch(FetchRequest(url: file.absoluteString, maxBodyBytes: 1000))
        #expect(exact.body.count == 1000)
        let error = await #expect(throws: FetchError.self) {
            try await fetcher.fetch(FetchRequest(url: file.absoluteString, maxBodyBytes: 999))
        }
        #expect(error?.kind == .bodyTooLarge)
    }

    @Test("schemes other than https, http and file are refused before any transfer")
    func schemes() async throws {
        for url in ["ftp://127.0.0.1/jwks.json", "gopher://127.0.0.1/", "127.0.0.1/jwks.json"] {
            let error = await #expect(throws: FetchError.self) { try await fetcher.fetch(FetchRequest(url: url)) }
            #expect(error?.kind == .unsupportedProtocol, "\(url)")
        }
    }

    @Test("fetches run off the caller's threads: 20 hanging fetches are all in flight at once")
    func concurrency() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        try server.setMode(.hang, hangSeconds: 60)
        // Short enough to free libcurl's shared threads soon for the other tests.
        let request = FetchRequest(url: server.baseURL + "/jwks.json", timeout: .seconds(4))
        let finished = FinishedCount()
        let fetches = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        _ = try? await fetcher.fetch(request)
                        finished.value.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        // Were fetches blocking Swift's cooperative pool (two threads here), no other task could run until one
        // of them ended. Once the server holds some of them, a fresh task runs and sees none ended: an
        // ordering, not a wall-clock bound.
        while try server.jwksRequestCount() < 2 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let finishedWhenATaskRan = await Task.detached { finished.value.load(ordering: .relaxed) }.value
        #expect(finishedWhenATaskRan == 0)
        await fetches.value
        try server.setMode(.ok)
    }

    @Test("cancelling the awaiting task aborts the transfer")
    func cancellation() async throws {
        let server = try JWKSTestServer.start()
        defer { server.stop() }
        try server.setMode(.hang, hangSeconds: 30)
        let request = FetchRequest(url: server.baseURL + "/jwks.json", timeout: .seconds(20))
        let start = ContinuousClock.now
        let task = Task { () throws(FetchError) -> FetchResponse in try await fetcher.fetch(request) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let result = await task.result
        let elapsed = ContinuousClock.now - start
        print("cancellation: the fetch ended \(elapsed) after it started")
        // Cancelled, not timed out: the transfer was aborted before its 20 s timeout could end it.
        #expect(throws: FetchError(.cancelled, "cancelled")) { try result.get() }
        try server.setMode(.ok)
    }
}

/// A TCP socket bound to a free port on 127.0.0.1 but not listening: connecting to it is refused, and no
/// other test can take the port while it is open.
private struct BoundSocket {
    let descriptor: Int32
    let port: Int

    struct Failure: Error {}

    init() throws {
        #if canImport(Glibc)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw Failure() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && getsockname(descriptor, address, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw Failure()
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func release() {
        close(descriptor)
    }
}

/// Fetches that have ended, counted across tasks.
private final class FinishedCount: Sendable {
    let value = Atomic<Int>(0)
}
