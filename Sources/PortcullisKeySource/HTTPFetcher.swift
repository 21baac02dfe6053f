import CLibcurl
import Foundation
import Synchronization

/// One download of a small document (JWKS, discovery).
public struct FetchRequest: Sendable, Hashable {
    /// An `https://`, `http://` or `file://` URL. Anything else is refused before a transfer starts.
    public var url: String
    /// Time allowed to establish the connection, TLS handshake included.
    public var connectTimeout: Duration = .seconds(2)
    /// Time allowed for the whole transfer, redirects included.
    public var timeout: Duration = .seconds(5)
    /// Largest body accepted, counted after content decoding (so a compressed bomb is stopped too).
    public var maxBodyBytes: Int = 1 << 20
    /// Redirects followed before the fetch fails.
    public var maxRedirects: Int = 3
    /// A PEM CA bundle trusted *instead of* the system store; nil trusts the system store.
    public var caFile: String?
    public var userAgent: String = "Portcullis/0.1 (+https://github.com/portcullis)"

    public init(
        url: String,
        connectTimeout: Duration = .seconds(2),
        timeout: Duration = .seconds(5),
        maxBodyBytes: Int = 1 << 20,
        maxRedirects: Int = 3,
        caFile: String? = nil
    ) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.maxBodyBytes = maxBodyBytes
        self.maxRedirects = maxRedirects
        self.caFile = caFile
    }
}

/// What a fetch returned. HTTP error statuses are responses, not errors: the caller decides what they mean.
public struct FetchResponse: Sendable, Hashable {
    /// The HTTP status of the final response; 200 for a successful `file://` read.
    public var status: Int
    public var body: [UInt8]
    /// The `Cache-Control` of the final response (after redirects), repeated headers joined with ", ".
    public var cacheControl: String?
    /// The `Expires` of the final response.
    public var expires: String?
    /// The `Date` of the final response.
    public var date: String?
    /// The URL the body came from, after redirects.
    public var effectiveURL: String

    public init(
        status: Int,
        body: [UInt8],
        cacheControl: String? = nil,
        expires: String? = nil,
        date: String? = nil,
        effectiveURL: String
    ) {
        self.status = status
        self.body = body
        self.cacheControl = cacheControl
        self.expires = expires
        self.date = date
        self.effectiveURL = effectiveURL
    }
}

/// Why a fetch produced no response. `message` is short and safe to log; it never holds a body.
public struct FetchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The broad cause, for callers and tests that branch on it rather than on the wording.
    public enum Kind: Sendable, Hashable {
        case timedOut
        case couldNotConnect
        case couldNotResolveHost
        case tooManyRedirects
        /// A redirect into a scheme the original URL does not allow (https → http, anything → file).
        case refusedRedirect
        case bodyTooLarge
        case tls
        case unsupportedProtocol
        case fileNotReadable
        case invalidRequest
        case cancelled
        case other
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Downloads documents. Implementations never block the calling thread.
public protocol DocumentFetcher: Sendable {
    func fetch(_ request: FetchRequest) async throws(FetchError) -> FetchResponse
}

/// A `DocumentFetcher` over the system libcurl.
///
/// Each fetch is one `curl_easy_perform` on a thread of a small dedicated pool (never Swift's cooperative
/// pool, never an event loop); the awaiting task is suspended meanwhile. Handles are not reused, so there is
/// no connection reuse between fetches: they are rare (a JWKS every few minutes) and a fresh handle keeps
/// every fetch independent of the last one's state.
///
/// Redirects are followed up to `maxRedirects`, but never from https to anything but https, and never into
/// `file://`. Cancelling the awaiting task aborts the transfer within about a second.
public final class CurlFetcher: DocumentFetcher {
    private let pool: BlockingThreadPool

    public init() {
        pool = .curlTransfers
    }

    public func fetch(_ request: FetchRequest) async throws(FetchError) -> FetchResponse {
        let cancellation = CancellationFlag()
        let result: Result<FetchResponse, FetchError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                pool.submit {
                    continuation.resume(returning: CurlTransfer.run(request, cancellation: cancellation))
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
        return try result.get()
    }
}

/// Set when the awaiting task is cancelled; polled by libcurl's progress callback on the transfer thread.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    func cancel() { flag.store(true, ordering: .relaxed) }

    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// `curl_global_init` must run once, before any handle exists, and is not safe to race: a global `let` is
/// initialised exactly once, thread-safely, on first use.
private let curlGlobalInitResult: CURLcode = curl_global_init(portcullis_CURL_GLOBAL_DEFAULT)

/// One blocking transfer. Runs on a pool thread.
enum CurlTransfer {
    static func run(_ request: FetchRequest, cancellation: CancellationFlag) -> Result<FetchResponse, FetchError> {
        guard curlGlobalInitResult == CURLE_OK else {
            return .failure(FetchError(.other, "libcurl failed to initialise: \(describe(curlGlobalInitResult))"))
        }
        let context = TransferContext(maxBodyBytes: request.maxBodyBytes, cancellation: cancellation)
        // The callbacks hold an unretained pointer to `context`, and libcurl may write the error buffer until
        // cleanup, so the context must outlive the handle.
        return withExtendedLifetime(context) {
            Result { () throws(FetchError) in try perform(request, context: context) }
        }
    }

    private static func perform(_ request: FetchRequest, context: TransferContext) throws(FetchError) -> FetchResponse {
        if context.cancellation.isCancelled { throw FetchError(.cancelled, "cancelled") }
        let scheme = try scheme(of: request.url)
        guard request.maxBodyBytes >= 0, request.maxRedirects >= 0 else {
            throw FetchError(.invalidRequest, "negative body or redirect limit")
        }
        guard let handle = curl_easy_init() else { throw FetchError(.other, "libcurl could not create a transfer") }
        defer { curl_easy_cleanup(handle) }
        let easy = EasyHandle(handle: handle)

        try easy.set(CURLOPT_ERRORBUFFER, pointer: context.errorBuffer)
        // Transfers run on many threads; without this, libcurl's resolver timeouts use SIGALRM.
        try easy.set(CURLOPT_NOSIGNAL, 1)
        try easy.set(CURLOPT_URL, request.url)
        try easy.set(CURLOPT_PROTOCOLS_STR, "http,https,file")
        // An https document must not be fetchable through a plain-text hop, and no remote server may point
        // us at a local file.
        try easy.set(CURLOPT_REDIR_PROTOCOLS_STR, scheme == "https" ? "https" : "http,https")
        try easy.set(CURLOPT_FOLLOWLOCATION, 1)
        try easy.set(CURLOPT_MAXREDIRS, request.maxRedirects)
        // 0 means "no timeout" to libcurl; a zero or negative limit here means "as short as possible".
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, max(1, request.connectTimeout.wholeMilliseconds))
        try easy.set(CURLOPT_TIMEOUT_MS, max(1, request.timeout.wholeMilliseconds))
        try easy.set(CURLOPT_USERAGENT, request.userAgent)
        try easy.set(CURLOPT_SSL_VERIFYPEER, 1)
        try easy.set(CURLOPT_SSL_VERIFYHOST, 2)
        if let caFile = request.caFile {
            try easy.set(CURLOPT_CAINFO, caFile)
            // Without this, Debian's libcurl would still trust /etc/ssl/certs beside the bundle.
            try easy.set(CURLOPT_CAPATH, nil as String?)
        }
        try easy.set(CURLOPT_ACCEPT_ENCODING, "")
        // Stops early when Content-Length is announced; the write callback stops the rest.
        try easy.set(CURLOPT_MAXFILESIZE_LARGE, offset: curl_off_t(request.maxBodyBytes))

        let opaque = Unmanaged.passUnretained(context).toOpaque()
        try easy.check(
            portcullis_curl_setopt_write_function(handle) { buffer, size, count, opaque in
                guard let opaque else { return 0 }
                let context = Unmanaged<TransferContext>.fromOpaque(opaque).takeUnretainedValue()
                return context.receiveBody(UnsafeRawBufferPointer(start: buffer, count: size * count))
            }, "CURLOPT_WRITEFUNCTION")
        try easy.set(CURLOPT_WRITEDATA, pointer: opaque)
        try easy.check(
            portcullis_curl_setopt_header_function(handle) { buffer, size, count, opaque in
                guard let opaque else { return 0 }
                let context = Unmanaged<TransferContext>.fromOpaque(opaque).takeUnretainedValue()
                return context.receiveHeader(UnsafeRawBufferPointer(start: buffer, count: size * count))
            }, "CURLOPT_HEADERFUNCTION")
        try easy.set(CURLOPT_HEADERDATA, pointer: opaque)
        try easy.check(
            portcullis_curl_setopt_xferinfo_function(handle) { opaque, _, _, _, _ in
                guard let opaque else { return 0 }
                let context = Unmanaged<TransferContext>.fromOpaque(opaque).takeUnretainedValue()
                return context.cancellation.isCancelled ? 1 : 0
            }, "CURLOPT_XFERINFOFUNCTION")
        try easy.set(CURLOPT_XFERINFODATA, pointer: opaque)
        try easy.set(CURLOPT_NOPROGRESS, 0)

        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            throw failure(code, request: request, scheme: scheme, easy: easy, context: context)
        }
        var status = easy.long(CURLINFO_RESPONSE_CODE)
        if scheme == "file" && status == 0 { status = 200 }  // libcurl has no status for a file read
        return FetchResponse(
            status: status, body: context.body, cacheControl: context.cacheControl, expires: context.expires,
            date: context.date, effectiveURL: easy.string(CURLINFO_EFFECTIVE_URL) ?? request.url)
    }

    /// The lowercased scheme, when it is one this fetcher speaks. Checked here so that a bare host is never
    /// guessed to be http, and so the redirect policy is chosen from a scheme known for sure.
    private static func scheme(of url: String) throws(FetchError) -> String {
        guard let separator = url.range(of: "://") else {
            throw FetchError(.unsupportedProtocol, "URL has no scheme (expected https://, http:// or file://)")
        }
        let scheme = url[..<separator.lowerBound].lowercased()
        guard ["https", "http", "file"].contains(scheme) else {
            throw FetchError(.unsupportedProtocol, "unsupported URL scheme \"\(scheme)\"")
        }
        return scheme
    }

    /// A clear message for a failed transfer. libcurl's own text is appended only where it adds something.
    private static func failure(
        _ code: CURLcode,
        request: FetchRequest,
        scheme: String,
        easy: EasyHandle,
        context: TransferContext
    ) -> FetchError {
        let detail = context.errorText.isEmpty ? describe(code) : context.errorText
        switch code {
        case CURLE_ABORTED_BY_CALLBACK where context.cancellation.isCancelled:
            return FetchError(.cancelled, "cancelled")
        case CURLE_WRITE_ERROR where context.bodyTooLarge, CURLE_FILESIZE_EXCEEDED:
            return FetchError(.bodyTooLarge, "body larger than \(request.maxBodyBytes) bytes")
        case CURLE_OPERATION_TIMEDOUT:
            // Zero connect time: the limit hit while still connecting (or resolving).
            if scheme != "file" && easy.offset(CURLINFO_CONNECT_TIME_T) == 0 {
                let limit = min(request.connectTimeout, request.timeout)
                return FetchError(.timedOut, "connection timed out after \(limit.shortDescription)")
            }
            return FetchError(.timedOut, "timed out after \(request.timeout.shortDescription)")
        case CURLE_COULDNT_CONNECT:
            if easy.long(CURLINFO_OS_ERRNO) == Int(ECONNREFUSED) {
                return FetchError(.couldNotConnect, "connection refused")
            }
            return FetchError(.couldNotConnect, "could not connect (\(detail))")
        case CURLE_COULDNT_RESOLVE_HOST:
            return FetchError(.couldNotResolveHost, "could not resolve host (\(detail))")
        case CURLE_COULDNT_RESOLVE_PROXY:
            return FetchError(.couldNotResolveHost, "could not resolve proxy (\(detail))")
        case CURLE_TOO_MANY_REDIRECTS:
            return FetchError(.tooManyRedirects, "too many redirects (more than \(request.maxRedirects))")
        case CURLE_UNSUPPORTED_PROTOCOL:
            // The original URL's scheme was checked up front, so after a redirect this is the target's
            // scheme, refused by CURLOPT_REDIR_PROTOCOLS_STR. libcurl has made the target the effective URL.
            if easy.long(CURLINFO_REDIRECT_COUNT) > 0, let target = easy.string(CURLINFO_EFFECTIVE_URL) {
                let targetScheme = target.range(of: "://").map { target[..<$0.lowerBound].lowercased() } ?? "?"
                return FetchError(.refusedRedirect, "redirect from \(scheme) to \(targetScheme) refused")
            }
            return FetchError(.unsupportedProtocol, "unsupported protocol (\(detail))")
        case CURLE_PEER_FAILED_VERIFICATION:
            return FetchError(.tls, "TLS certificate verification failed (\(detail))")
        case CURLE_SSL_CACERT_BADFILE:
            return FetchError(.tls, "CA file could not be loaded (\(detail))")
        case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_NOTFOUND,
            CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_SHUTDOWN_FAILED,
            CURLE_SSL_CRL_BADFILE, CURLE_SSL_CLIENTCERT, CURLE_USE_SSL_FAILED:
            return FetchError(.tls, "TLS handshake failed (\(detail))")
        case CURLE_FILE_COULDNT_READ_FILE, CURLE_READ_ERROR:
            return FetchError(.fileNotReadable, "could not read file (\(detail))")
        case CURLE_URL_MALFORMAT:
            return FetchError(.invalidRequest, "malformed URL (\(detail))")
        case CURLE_GOT_NOTHING:
            return FetchError(.other, "server closed the connection without a response")
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2,
            CURLE_HTTP2_STREAM, CURLE_BAD_CONTENT_ENCODING:
            return FetchError(.other, "transfer failed (\(detail))")
        default:
            return FetchError(.other, "\(describe(code)) (\(detail))")
        }
    }

    static func describe(_ code: CURLcode) -> String {
        String(cString: curl_easy_strerror(code))
    }
}

/// Typed access to one easy handle's options and results, each checked.
private struct EasyHandle {
    let handle: UnsafeMutableRawPointer

    func check(_ code: CURLcode, _ what: @autoclosure () -> String) throws(FetchError) {
        guard code == CURLE_OK else {
            throw FetchError(.invalidRequest, "libcurl refused \(what()): \(CurlTransfer.describe(code))")
        }
    }

    func set(_ option: CURLoption, _ value: Int) throws(FetchError) {
        try check(portcullis_curl_setopt_long(handle, option, value), "option \(option.rawValue)")
    }

    func set(_ option: CURLoption, offset value: curl_off_t) throws(FetchError) {
        try check(portcullis_curl_setopt_off_t(handle, option, value), "option \(option.rawValue)")
    }

    func set(_ option: CURLoption, _ value: String?) throws(FetchError) {
        let code =
            if let value {
                value.withCString { portcullis_curl_setopt_string(handle, option, $0) }
            } else {
                portcullis_curl_setopt_string(handle, option, nil)
            }
        try check(code, "option \(option.rawValue)")
    }

    func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer) throws(FetchError) {
        try check(portcullis_curl_setopt_pointer(handle, option, value), "option \(option.rawValue)")
    }

    func long(_ info: CURLINFO) -> Int {
        var value = 0
        return portcullis_curl_getinfo_long(handle, info, &value) == CURLE_OK ? value : 0
    }

    func offset(_ info: CURLINFO) -> curl_off_t {
        var value: curl_off_t = 0
        return portcullis_curl_getinfo_off_t(handle, info, &value) == CURLE_OK ? value : 0
    }

    /// A copy of a string the handle owns.
    func string(_ info: CURLINFO) -> String? {
        var value: UnsafePointer<CChar>?
        guard portcullis_curl_getinfo_string(handle, info, &value) == CURLE_OK, let value else { return nil }
        return String(cString: value)
    }
}

/// Everything libcurl's callbacks touch during one transfer. Only the transfer's own thread uses it, from
/// inside `curl_easy_perform` and after it returns.
private final class TransferContext {
    let maxBodyBytes: Int
    let cancellation: CancellationFlag
    /// CURLOPT_ERRORBUFFER: libcurl writes a NUL-terminated detail message here on failure.
    let errorBuffer: UnsafeMutableRawPointer
    private(set) var body: [UInt8] = []
    private(set) var bodyTooLarge = false
    private(set) var cacheControl: String?
    private(set) var expires: String?
    private(set) var date: String?

    init(maxBodyBytes: Int, cancellation: CancellationFlag) {
        self.maxBodyBytes = maxBodyBytes
        self.cancellation = cancellation
        errorBuffer = UnsafeMutableRawPointer.allocate(byteCount: Int(CURL_ERROR_SIZE), alignment: 1)
        errorBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        errorBuffer.deallocate()
    }

    var errorText: String {
        String(cString: errorBuffer.assumingMemoryBound(to: CChar.self))
    }

    /// CURLOPT_WRITEFUNCTION. Returning less than `chunk.count` makes libcurl stop with CURLE_WRITE_ERROR,
    /// which is how a body without (or lying about) Content-Length is cut off at the limit.
    func receiveBody(_ chunk: UnsafeRawBufferPointer) -> Int {
        guard chunk.count <= maxBodyBytes - body.count else {
            bodyTooLarge = true
            return 0
        }
        body.append(contentsOf: chunk)
        return chunk.count
    }

    /// CURLOPT_HEADERFUNCTION: one header line at a time, status lines of every redirect hop included.
    func receiveHeader(_ line: UnsafeRawBufferPointer) -> Int {
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            // A new response starts (a redirect hop, or a 1xx): only the final one's headers count.
            cacheControl = nil
            expires = nil
            date = nil
        } else if let colon = text.firstIndex(of: ":") {
            let value = Self.trimmed(text[text.index(after: colon)...])
            switch Self.trimmed(text[..<colon]).lowercased() {
            case "cache-control": cacheControl = cacheControl.map { "\($0), \(value)" } ?? value
            case "expires": expires = value
            case "date": date = value
            default: break
            }
        }
        return line.count
    }

    private static func trimmed(_ text: Substring) -> String {
        // `isWhitespace`, not a list of characters: "\r\n" is one Character.
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// Threads for blocking work, so that no caller — Swift's cooperative pool, an event loop — waits on the
/// network. Threads start on demand up to `maxThreads` and exit after `idleTimeout` without work; beyond
/// `maxThreads`, jobs queue (each transfer is bounded by its own timeout, so the queue always drains).
final class BlockingThreadPool: @unchecked Sendable {
    // @unchecked: `state` is only read or written while `condition` is locked.

    /// The pool every `CurlFetcher` shares: fetches are rare, and one bound for the process is what matters.
    static let curlTransfers = BlockingThreadPool(name: "portcullis-curl", maxThreads: 16, idleTimeout: 30)

    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var threads = 0
        var idle = 0
    }

    private let name: String
    private let maxThreads: Int
    private let idleTimeout: TimeInterval
    private let condition = NSCondition()
    private var state = State()

    init(name: String, maxThreads: Int, idleTimeout: TimeInterval) {
        self.name = name
        self.maxThreads = maxThreads
        self.idleTimeout = idleTimeout
    }

    /// Runs `job` on a pool thread, as soon as one is free.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        state.jobs.append(job)
        // Every waiting thread already signalled will take one job; start a thread for the rest.
        let spawn = state.jobs.count > state.idle && state.threads < maxThreads
        if spawn {
            state.threads += 1
        } else {
            condition.signal()
        }
        condition.unlock()
        if spawn {
            let thread = Thread { [self] in work() }
            thread.name = name
            thread.start()
        }
    }

    private func work() {
        condition.lock()
        while true {
            while state.jobs.isEmpty {
                state.idle += 1
                let signalled = condition.wait(until: Date(timeIntervalSinceNow: idleTimeout))
                state.idle -= 1
                if !signalled && state.jobs.isEmpty {
                    state.threads -= 1
                    condition.unlock()
                    return
                }
            }
            let job = state.jobs.removeFirst()
            condition.unlock()
            job()
            condition.lock()
        }
    }
}

extension Duration {
    /// Whole milliseconds, saturating instead of overflowing.
    fileprivate var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? Int.min : Int.max }
        return Int(milliseconds + attoseconds / 1_000_000_000_000_000)
    }

    /// "5s", "1.5s" or "250ms", for messages.
    fileprivate var shortDescription: String {
        let milliseconds = wholeMilliseconds
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        return "\(Double(milliseconds) / 1000)s"
    }
}
