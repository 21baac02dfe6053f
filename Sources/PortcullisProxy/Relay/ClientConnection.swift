import Logging
import NIOCore
import NIOHTTP1
import PortcullisCore
import PortcullisWire
import Synchronization

/// One client connection, the only handler of its pipeline: it reads requests from the connection's bytes
/// (`ClientRequestReader`), decides each at its head, then either answers it or relays it, streaming, to an
/// upstream connection from its loop's pool.
///
/// Reads are the backpressure: the client is not read while a decision is pending (so a refused request's
/// body is never read, let alone forwarded), while the upstream connection is being made, or while the
/// upstream cannot take more bytes; the upstream is not read while the client cannot take more. Bytes are
/// parsed only as far as the connection can act on them: a pipelined request waits, unparsed, in `unread`
/// until the one before it is answered, and a body is not parsed while its request is being decided.
final class ClientConnection {
    private let settings: ProxySettings
    private let loop: LoopState
    private let headDeadline: HeadDeadline
    private var context: ChannelHandlerContext?
    private var state = State.idle
    /// A read the pipeline asked for while reads were paused.
    private var pendingRead = false
    private var reader: ClientRequestReader
    /// Bytes read from the client and not parsed yet.
    private var unread: ByteBuffer?
    /// `takeRequestParts` is running: a state change inside it needs no call of its own.
    private var takingParts = false
    /// Parts of a request that was answered before its end arrived: dropped until `.end`.
    private var discardingBody = false
    private var clientAddress: String?
    /// Bumped per request, so a verification finishing late never acts on a later request.
    private var requestSerial = 0
    /// What the access log and the metrics say of the request in flight.
    private var record: RequestRecord?
    /// The last time bytes moved for this connection, for the idle timeout.
    private var lastActivity = NIODeadline.now()
    /// The one timer of this connection: it checks the idle and upstream-response deadlines when it fires and
    /// re-arms itself for the nearest, so no request schedules or cancels a timer of its own.
    private var timer: Scheduled<Void>?
    /// A graceful drain asked this connection to close once its request in flight is answered.
    private var closeWhenDone = false
    /// Kept past the handler's removal (an upgrade), so a drain can still close the connection.
    private var channel: (any Channel)?
    private var timerDeadline: NIODeadline?

    private enum State {
        case idle
        /// Verification is waiting for a key refetch.
        case deciding(Request)
        case relaying(Exchange)
        /// Bytes now flow through the glue; this handler is leaving.
        case upgraded
        case closed
    }

    /// A request and what the gate made of it.
    private struct Request {
        let head: HTTPRequestHead
        let serial: Int
        let admission: RequestGate.Admission
        /// Whether a body follows the head (a length above zero, or chunked).
        let hasBody: Bool
        /// Whether the body is chunked (the gate admits no other transfer coding).
        let isChunked: Bool
        /// Whether the client lets the connection stay open after this request (read once: each reading
        /// parses `Connection`).
        let keepAlive: Bool
    }

    /// An allowed request being relayed.
    private final class Exchange {
        let request: Request
        /// The head sent upstream, as bytes.
        let upstreamHead: ByteBuffer
        let isUpgrade: Bool
        var upstream: UpstreamConnection?
        var reused = false
        var retried = false
        /// Body parts that arrived before the upstream connection was ready.
        var buffered: [HTTPServerRequestPart] = []
        var requestEnded: Bool
        var bodyBytes = 0
        var responseStarted = false
        /// A `101` was relayed; at its `.end` both connections become raw.
        var switching = false
        /// How the response's body reaches the client.
        var clientFraming = ResponseBytes.Framing.asIs
        /// The response's head said `Connection: close`, or its body ends with the connection.
        var closeAfterResponse = false
        /// When the upstream must have started its response; nil once it has (or before the request is sent).
        var responseDeadline: NIODeadline?

        init(request: Request, upstreamHead: ByteBuffer, isUpgrade: Bool) {
            self.request = request
            self.upstreamHead = upstreamHead
            self.isUpgrade = isUpgrade
            requestEnded = false
        }
    }

    init(settings: ProxySettings, loop: LoopState, headDeadline: HeadDeadline) {
        self.settings = settings
        self.loop = loop
        self.headDeadline = headDeadline
        reader = ClientRequestReader(maxHeadBytes: settings.gate.maxHeaderBytes)
    }
}

// MARK: - Deciding

extension ClientConnection {
    private func received(head clientHead: HTTPRequestHead, context: ChannelHandlerContext) {
        headDeadline.headArrived()
        requestSerial += 1
        // In forward-auth mode the request to judge is the one the front proxy received, which it describes
        // in headers; the request itself (`GET /auth`, say) is only the question.
        let head = settings.forwardAuth ? ForwardAuth.originalRequest(clientHead) : clientHead
        // Timed from when its bytes were read, which for a pipelined request is before its turn came.
        record = RequestRecord(head: head, started: lastActivity)
        let isChunked = head.headers.contains(name: "transfer-encoding")
        let hasBody = isChunked || (head.headers.first(name: "content-length").flatMap(Int.init) ?? 0) > 0
        switch settings.gate.evaluate(head) {
        case .respond(let response):
            answer(response, keepAlive: head.isKeepAlive, hasBody: hasBody)
        case .admit(let admission):
            let request = Request(
                head: head, serial: requestSerial, admission: admission, hasBody: hasBody, isChunked: isChunked,
                keepAlive: head.isKeepAlive)
            switch admission.evaluation {
            case .decided(let decision):
                conclude(decision, request: request)
            case .verify(let token):
                let now = settings.clock()
                switch settings.authorizer.authorizeWithoutWaiting(token, now: now, cache: &loop.tokenCache) {
                case .decided(let result):
                    conclude(AuthDecision.decide(rule: admission.rule, verification: result), request: request)
                case .wait:
                    waitForVerification(of: String(token), request: request, context: context)
                }
            }
        }
    }

    /// An unknown `kid`: verification waits (bounded) for a key refetch off the event loop, and the request
    /// waits with it, unread.
    private func waitForVerification(of token: String, request: Request, context: ChannelHandlerContext) {
        state = .deciding(request)
        let authorizer = settings.authorizer
        let now = settings.clock()
        let promise = context.eventLoop.makePromise(of: Result<VerifiedToken, TokenRefusal>.self)
        promise.completeWithTask { await authorizer.authorize(token, now: now) }
        promise.futureResult.assumeIsolated().whenSuccess { [self] result in
            guard case .deciding(let pending) = state, pending.serial == request.serial else { return }
            if case .success(let verified) = result {
                authorizer.remember(verified, token: token[...], now: now, in: &loop.tokenCache)
            }
            state = .idle
            conclude(AuthDecision.decide(rule: request.admission.rule, verification: result), request: request)
            takeRequestParts()
            readIfPending()
        }
    }

    private func conclude(_ decision: AuthDecision, request: Request) {
        switch decision {
        case .deny:
            // The response carries the reason; `answer` records it.
            if let response = settings.gate.response(for: decision) {
                answer(response, keepAlive: request.keepAlive, hasBody: request.hasBody)
            }
        case .allow(let identity):
            record?.allowed(identity: identity)
            settings.metrics.recordDecision("allowed", reason: identity == nil ? "anonymous" : "ok")
            if settings.forwardAuth {
                allowWithoutRelay(identity: identity, request: request)
                return
            }
            let isUpgrade = UpstreamRequestHead.isUpgradeRequest(request.head)
            let upstreamHead = UpstreamRequestHead.bytes(
                client: request.head, target: request.admission.upstreamTarget,
                identityHeaders: ForwardedIdentity.headers(
                    identity: identity, anonymousRole: settings.anonymousRole, forwarding: settings.forwarding),
                clientAddress: clientAddress, isUpgrade: isUpgrade, requestID: record?.id,
                removed: settings.removedRequestHeaders, allocator: ByteBufferAllocator())
            relay(Exchange(request: request, upstreamHead: upstreamHead, isUpgrade: isUpgrade))
        }
    }

    /// Writes Portcullis's own response. When the request has a body that was not read, the connection closes
    /// after the response: the unread body would otherwise be parsed as the next request.
    private func answer(
        _ response: ProxyResponse, keepAlive: Bool, hasBody: Bool, recordDecision: Bool = true
    ) {
        guard let context else { return }
        var response = response
        if !recordDecision {
            // Already counted as allowed.
        } else if response.decision == "upstream_error" {
            settings.metrics.recordUpstreamError(status: response.status)
        } else {
            settings.metrics.recordDecision(response.decision, reason: response.code)
            record?.refused(decision: response.decision, reason: response.code)
        }
        if let id = record?.id { response.headers.append(.init(name: "X-Request-Id", value: id)) }
        complete(status: response.status, reason: response.code)
        let closing = hasBody || !keepAlive || closeWhenDone
        // State first: the write can deliver a pipelined request re-entrantly (see `finish`).
        discardingBody = true
        if closing {
            state = .closed
        } else {
            state = .idle
            headDeadline.awaitNextHead()
        }
        ResponseWriting.write(response, closing: closing, context: context)
        if closing {
            context.close(promise: nil)
        } else {
            takeRequestParts()
        }
    }

    /// Forward-auth: the decision is the answer. 200 with the identity headers, which the front proxy copies
    /// onto the request it relays (`auth_request_set`, `authResponseHeaders`).
    private func allowWithoutRelay(identity: VerifiedToken?, request: Request) {
        var headers = ForwardedIdentity.headers(
            identity: identity, anonymousRole: settings.anonymousRole, forwarding: settings.forwarding
        ).map { ProxyResponse.Header(name: $0.name, value: $0.value) }
        if let id = record?.id { headers.append(.init(name: "X-Request-Id", value: id)) }
        record?.status = 200
        let response = ProxyResponse(status: 200, headers: headers, body: #"{"decision":"allowed"}"#, code: "ok")
        answer(response, keepAlive: request.keepAlive, hasBody: request.hasBody, recordDecision: false)
    }

    private func close(context: ChannelHandlerContext) {
        // Before the state says closed, which channelInactive would then take as nothing left to end.
        abandonExchange()
        state = .closed
        // The flush above is ordered before the close.
        context.close(promise: nil)
    }
}

// MARK: - Relaying

extension ClientConnection {
    private func relay(_ exchange: Exchange) {
        state = .relaying(exchange)
        // An upgrade never takes a parked connection: it will not come back to the pool.
        if !exchange.isUpgrade, let upstream = loop.pool.takeIdle() {
            exchange.reused = true
            start(exchange, on: upstream)
            return
        }
        loop.pool.connect { [self] result in
            switch result {
            case .success(let upstream):
                guard case .relaying(let current) = state, current === exchange else {
                    // The client went away meanwhile.
                    upstream.close()
                    return
                }
                start(exchange, on: upstream)
            case .failure(let error):
                guard case .relaying(let current) = state, current === exchange else { return }
                settings.logger.warning(
                    "upstream unreachable", metadata: ["error": "\(error)", "upstream": "\(settings.upstream)"])
                answer(.upstreamUnavailable, keepAlive: exchange.request.keepAlive, hasBody: !exchange.requestEnded)
            }
        }
    }

    private func start(_ exchange: Exchange, on upstream: UpstreamConnection) {
        exchange.upstream = upstream
        record?.upstreamStarted = .now()
        upstream.begin(
            head: exchange.upstreamHead, isHEAD: exchange.request.head.method == .HEAD,
            chunked: exchange.request.isChunked, delegate: self)
        for part in exchange.buffered { forward(part, to: upstream, exchange: exchange) }
        exchange.buffered.removeAll()
        upstream.flush()
        if exchange.isUpgrade || exchange.requestEnded { armTimeout(exchange) }
        if let deadline = exchange.responseDeadline { rescheduleTimer(ifLaterThan: deadline) }
        readIfPending()
    }

    private func armTimeout(_ exchange: Exchange) {
        guard exchange.responseDeadline == nil, !exchange.responseStarted else { return }
        exchange.responseDeadline = .now() + settings.upstreamTimeout
    }

    /// Makes sure the timer fires by `deadline`. The idle timeout is longer than the upstream timeout by
    /// default, so this rarely reschedules; when it must, it is once per request at most.
    private func rescheduleTimer(ifLaterThan deadline: NIODeadline) {
        if timer != nil, let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timer = nil
        scheduleTimer(at: deadline)
    }

    /// Arms the connection's timer for `deadline` unless it already fires sooner.
    private func scheduleTimer(at deadline: NIODeadline) {
        guard timer == nil, let context else { return }
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        guard let context else { return }
        let now = NIODeadline.now()
        if case .relaying(let exchange) = state, !exchange.responseStarted, let deadline = exchange.responseDeadline {
            if deadline <= now {
                exchange.responseDeadline = nil
                exchange.upstream?.close()
                exchange.upstream = nil
                answer(.upstreamTimeout, keepAlive: exchange.request.keepAlive, hasBody: !exchange.requestEnded)
            } else {
                // Waiting on the upstream: its timeout applies, not the idle one.
                scheduleTimer(at: deadline)
                return
            }
        }
        switch state {
        case .closed, .upgraded:
            return
        default:
            break
        }
        let idleDeadline = lastActivity + settings.idleTimeout
        if idleDeadline <= now {
            // Nothing moved either way for the idle timeout.
            close(context: context)
        } else {
            scheduleTimer(at: idleDeadline)
        }
    }

    /// Sends a request part upstream (not flushed: the client's read-complete flushes).
    private func forward(_ part: HTTPServerRequestPart, to upstream: UpstreamConnection, exchange: Exchange) {
        switch part {
        case .head:
            break
        case .body(let buffer):
            upstream.writeBody(buffer)
        case .end:
            // A request's trailer fields are read (and checked) but never passed on, as Envoy and nginx do by
            // default (RFC 9110 §6.5.2 lets a proxy that removes the chunked coding discard them). They arrive
            // after the head was judged and rewritten: an upstream that merges them into the headers (Apache's
            // MergeTrailers, CVE-2013-5704) would take a role, a token or a forwarded address from the client.
            exchange.requestEnded = true
            upstream.writeEnd()
            armTimeout(exchange)
            if let deadline = exchange.responseDeadline { rescheduleTimer(ifLaterThan: deadline) }
        }
    }

    private func receivedBody(_ part: HTTPServerRequestPart, exchange: Exchange) {
        if case .body(let buffer) = part {
            exchange.bodyBytes += buffer.readableBytes
            if let limit = settings.gate.maxBodyBytes, exchange.bodyBytes > limit {
                // A chunked body over the limit: the upstream has part of it, so that exchange is abandoned.
                exchange.upstream?.close()
                exchange.upstream = nil
                if exchange.responseStarted {
                    if let context { close(context: context) }
                } else {
                    answer(.bodyTooLarge, keepAlive: exchange.request.keepAlive, hasBody: true)
                }
                return
            }
        }
        if case .end = part { exchange.requestEnded = true }
        guard let upstream = exchange.upstream else {
            exchange.buffered.append(part)
            return
        }
        forward(part, to: upstream, exchange: exchange)
    }

    private var shouldRead: Bool {
        // A pipelined request's bytes are waiting for the one in flight: no more until it is answered.
        if let unread, unread.readableBytes > 0, reader.isBetweenRequests, !isIdle { return false }
        return switch state {
        case .idle: true
        case .deciding: false
        case .relaying(let exchange): exchange.upstream?.isWritable ?? false
        case .upgraded, .closed: false
        }
    }

    private func readIfPending() {
        guard pendingRead, shouldRead, let context else { return }
        pendingRead = false
        context.read()
    }

    /// The response's end, written already: the exchange is over. The upstream connection goes back to the pool
    /// when both directions ended cleanly; the client connection stays open when keep-alive allows, and takes
    /// the next pipelined request, which must find it idle.
    private func finish(_ exchange: Exchange, context: ChannelHandlerContext) {
        exchange.responseDeadline = nil
        complete(status: record?.status ?? 0, reason: nil)
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            upstream.finishExchange()
            if exchange.requestEnded {
                loop.pool.release(upstream)
            } else {
                upstream.close()
            }
        }
        let closing =
            !exchange.requestEnded || !exchange.request.keepAlive || closeWhenDone || exchange.closeAfterResponse
        if closing {
            state = .closed
        } else {
            state = .idle
            headDeadline.awaitNextHead()
        }
        context.flush()
        if closing {
            context.close(promise: nil)
        } else {
            takeRequestParts()
            readIfPending()
        }
    }

    /// After a `101`: this connection and the upstream one become one raw byte stream.
    private func switchToRaw(_ exchange: Exchange, upstream: UpstreamConnection, context: ChannelHandlerContext) {
        exchange.responseDeadline = nil
        timer?.cancel()
        timer = nil
        complete(status: 101, reason: nil)
        state = .upgraded
        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair()
        do {
            let pipeline = context.pipeline.syncOperations
            try pipeline.addHandler(clientGlue)
            // The upstream's side first: what it sent after its 101 flows to the client through the glue (and
            // past this handler, which passes bytes on).
            try upstream.becomeRaw(glue: upstreamGlue)
            // Then what the client sent after its upgrade request, which was never parsed.
            if let unread, unread.readableBytes > 0 {
                self.unread = nil
                context.fireChannelRead(NIOAny(unread))
                context.fireChannelReadComplete()
            }
            pipeline.removeHandler(context: context, promise: nil)
            // A read held back while the exchange ran would never be issued now: ask for one on each side.
            context.channel.read()
            upstream.channel.read()
            // This handler has left the pipeline, so its channelInactive will never come: the loop forgets the
            // connection when the channel closes, or it would hold the connection (and its channel) for good.
            context.channel.closeFuture.assumeIsolated().whenComplete { [self] _ in loop.unregister(self) }
        } catch {
            settings.logger.warning("upgrade failed", metadata: ["error": "\(error)"])
            upstream.close()
            context.close(promise: nil)
        }
    }
}

// MARK: - The upstream's side of an exchange

extension ClientConnection: UpstreamExchangeDelegate {
    func upstreamReceived(_ event: UpstreamResponseReader.Event) {
        guard let context, case .relaying(let exchange) = state, let upstream = exchange.upstream else { return }
        switch event {
        case .head(let head):
            if head.isInterim {
                // 100 Continue and the like: passed on, the final response is still to come.
                writeHead(head, framing: .asIs, closing: false, to: context)
                context.flush()
                return
            }
            exchange.responseStarted = true
            exchange.responseDeadline = nil
            if let started = record?.upstreamStarted {
                let elapsed = (NIODeadline.now() - started).nanoseconds
                record?.upstreamNanoseconds = elapsed
                settings.metrics.recordUpstream(nanoseconds: elapsed)
            }
            record?.status = head.status
            if head.status == 101 {
                guard exchange.isUpgrade else {
                    // A 101 nobody asked for cannot be relayed as HTTP.
                    upstream.close()
                    exchange.upstream = nil
                    answer(.upstreamFailed, keepAlive: exchange.request.keepAlive, hasBody: !exchange.requestEnded)
                    return
                }
                // The switch waits for the reader's `.end` of this response, which comes next.
                exchange.switching = true
                writeHead(head, framing: .asIs, closing: false, to: context)
                context.flush()
                return
            }
            // A body without a length reaches an HTTP/1.1 client chunked; an HTTP/1.0 one, until the close.
            switch head.framing {
            case .none, .contentLength: exchange.clientFraming = .asIs
            case .chunked, .untilClose:
                if exchange.request.head.version.minor >= 1 {
                    exchange.clientFraming = .chunked
                } else {
                    exchange.clientFraming = .asIs
                    exchange.closeAfterResponse = true
                }
            }
            if !exchange.request.keepAlive || !exchange.requestEnded && exchange.request.hasBody || closeWhenDone {
                exchange.closeAfterResponse = true
            }
            writeHead(head, framing: exchange.clientFraming, closing: exchange.closeAfterResponse, to: context)
        case .body(let buffer):
            context.writeBody(buffer, chunked: exchange.clientFraming == .chunked)
        case .end(let trailers):
            if exchange.switching {
                switchToRaw(exchange, upstream: upstream, context: context)
            } else {
                if exchange.clientFraming == .chunked {
                    context.write(
                        NIOAny(ChunkedFraming.lastChunk(trailers: trailers, allocator: context.channel.allocator)),
                        promise: nil)
                }
                finish(exchange, context: context)
            }
        }
    }

    /// The upstream's head as the client gets it: the forwarded lines, then the client's own ending.
    private func writeHead(
        _ head: UpstreamResponseHead, framing: ResponseBytes.Framing, closing: Bool, to context: ChannelHandlerContext
    ) {
        context.write(NIOAny(head.forwarded), promise: nil)
        context.write(NIOAny(ResponseBytes.headEnd(framing: framing, closing: closing)), promise: nil)
    }

    func upstreamReadComplete() {
        // Once per read, not per part read: the idle timeout is coarse.
        lastActivity = .now()
        context?.flush()
    }

    func upstreamClosed(error: (any Error)?) {
        guard let context, case .relaying(let exchange) = state else { return }
        exchange.upstream = nil
        exchange.responseDeadline = nil
        if exchange.responseStarted {
            // Part of the response is out; the client can only learn of the failure by the connection closing.
            complete(status: record?.status ?? 0, reason: "upstream_aborted")
            close(context: context)
            return
        }
        if let error = error as? UpstreamResponseError {
            // Not a connection lost on reuse: the upstream answered with bytes that cannot be relayed. Asking
            // again would get the same answer.
            settings.logger.warning("upstream response refused", metadata: ["error": "\(error)"])
            answer(.upstreamInvalidResponse, keepAlive: exchange.request.keepAlive, hasBody: !exchange.requestEnded)
            return
        }
        // A parked connection the upstream had closed as it was reused: retry once on a fresh one, when
        // the request has no body that has been sent already.
        if exchange.reused && !exchange.retried && !exchange.request.hasBody {
            exchange.retried = true
            loop.pool.connect { [self] result in
                guard case .relaying(let current) = state, current === exchange else {
                    if case .success(let upstream) = result { upstream.close() }
                    return
                }
                switch result {
                case .success(let upstream):
                    exchange.reused = false
                    exchange.requestEnded = false
                    start(exchange, on: upstream)
                    // The request's end was already consumed from the client: state it again.
                    forward(.end(nil), to: upstream, exchange: exchange)
                case .failure:
                    answer(.upstreamUnavailable, keepAlive: exchange.request.keepAlive, hasBody: false)
                }
            }
            return
        }
        if let error { settings.logger.warning("upstream failed", metadata: ["error": "\(error)"]) }
        answer(.upstreamFailed, keepAlive: exchange.request.keepAlive, hasBody: !exchange.requestEnded)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { readIfPending() }
    }

    var clientIsWritable: Bool {
        context?.channel.isWritable ?? false
    }
}

// MARK: - Reading requests

extension ClientConnection {
    /// Parses what has been read and acts on each part, as far as the connection can take them: up to the next
    /// head while a request is in flight, and no further than a head while it is being decided. Called again
    /// whenever the state lets it go further.
    ///
    /// - Parameter flushing: whether to flush what went upstream. A read's parts are flushed at the read's
    ///   end (`channelReadComplete`); parts taken later (after a decision that waited, after the response to
    ///   the request before) have no read to end, and would otherwise sit unsent.
    private func takeRequestParts(flushing: Bool = true) {
        guard !takingParts, let context else { return }
        takingParts = true
        defer {
            takingParts = false
            if flushing, case .relaying(let exchange) = state { exchange.upstream?.flush() }
        }
        while canTakeNextPart {
            let part: HTTPServerRequestPart?
            do {
                part = try readPart()
            } catch {
                refuseMalformedRequest(error, context: context)
                return
            }
            guard let part else { break }
            dispatch(part, context: context)
        }
        // Let the channel's receive buffer be reused once nothing of it is left here.
        if unread?.readableBytes == 0 { unread = nil }
    }

    private func readPart() throws(ClientRequestError) -> HTTPServerRequestPart? {
        if unread == nil {
            // A request without a body ends without another byte: after a decision that waited, its `.end` is
            // due though everything read has been parsed (and `unread` let go).
            guard !reader.isBetweenRequests else { return nil }
            unread = ByteBuffer()
        }
        return try reader.read(&unread!)
    }

    private var canTakeNextPart: Bool {
        switch state {
        case .idle: true
        // The rest of the request in flight; the next one waits for its answer.
        case .relaying: !reader.isBetweenRequests
        case .deciding, .upgraded, .closed: false
        }
    }

    private var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    private func dispatch(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            discardingBody = false
            received(head: head, context: context)
        case (.relaying(let exchange), .body), (.relaying(let exchange), .end):
            if discardingBody {
                if case .end = part { discardingBody = false }
                return
            }
            receivedBody(part, exchange: exchange)
        case (.idle, .body), (.idle, .end):
            // The rest of a request that was answered without reading its body.
            if case .end = part { discardingBody = false }
        default:
            close(context: context)
        }
    }

    /// A request that cannot be parsed (the smuggling shapes among them) gets 400, or 431 for a head over the
    /// limit, with a JSON body, unless a response is already under way; either way the connection closes, so no
    /// byte of it is read as another request.
    private func refuseMalformedRequest(_ error: ClientRequestError, context: ChannelHandlerContext) {
        var responseUnderWay = false
        switch state {
        case .relaying(let exchange): responseUnderWay = exchange.responseStarted
        case .upgraded, .closed: responseUnderWay = true
        case .idle, .deciding: break
        }
        // A body cut short by bad framing ends its exchange here, before the state says closed: the upstream
        // connection has a partial request and must close with it.
        abandonExchange()
        state = .closed
        unread = nil
        if !responseUnderWay {
            let response: ProxyResponse =
                switch error {
                case .headTooLarge: .headersTooLarge
                case .unsupportedTransferCoding: .unsupportedTransferCoding
                default: .badRequest
                }
            settings.metrics.recordDecision(response.decision, reason: response.code)
            record?.refused(decision: response.decision, reason: response.code)
            complete(status: response.status, reason: response.code)
            ResponseWriting.write(response, closing: true, context: context)
        }
        context.close(promise: nil)
    }
}

// MARK: - ChannelDuplexHandler

extension ClientConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    /// Relayed responses, Portcullis's own, and after an upgrade the glue's bytes: all written as bytes.
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
        loop.register(self)
        clientAddress = context.channel.remoteAddress?.ipAddress
        lastActivity = .now()
        scheduleTimer(at: lastActivity + settings.idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        headDeadline.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        headDeadline.bytesArrived(at: lastActivity, context: context)
        var incoming = Self.unwrapInboundIn(data)
        if var pending = unread, pending.readableBytes > 0 {
            // Part of a head, or a pipelined request: joined in a buffer of their own, so the channel's receive
            // buffer is not held.
            unread = nil
            var joined = context.channel.allocator.buffer(capacity: pending.readableBytes + incoming.readableBytes)
            joined.writeBuffer(&pending)
            joined.writeBuffer(&incoming)
            unread = joined
        } else {
            unread = incoming
        }
        takeRequestParts(flushing: false)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .relaying(let exchange) = state { exchange.upstream?.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if shouldRead {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .relaying(let exchange) = state {
            exchange.upstream?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        loop.unregister(self)
        headDeadline.cancel()
        timer?.cancel()
        timer = nil
        if record != nil { complete(status: record?.status ?? 0, reason: "client_closed") }
        abandonExchange()
        state = .closed
        unread = nil
        context.fireChannelInactive()
    }

    /// Ends the exchange in flight, if any, without an answer from it: its upstream connection holds part of
    /// a request or owes part of a response, so it can never be reused and closes.
    private func abandonExchange() {
        guard case .relaying(let exchange) = state else { return }
        exchange.responseDeadline = nil
        exchange.upstream?.close()
        exchange.upstream = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A socket error: nothing more can be read or written.
        context.close(promise: nil)
    }
}

// MARK: - Draining

extension ClientConnection {
    /// Closes now if no request is in flight, else after its response (which then says `Connection: close`).
    func closeWhenIdle() {
        closeWhenDone = true
        guard let context else { return }
        // Idle, whatever is unread is at most part of a head: nothing was accepted that would be cut off.
        if case .idle = state { close(context: context) }
    }

    /// The drain timed out: close whatever is happening.
    func closeNow() {
        loop.unregister(self)
        channel?.close(promise: nil)
    }
}

// MARK: - Access log

extension ClientConnection {
    /// Writes the request's access line (once) and forgets it.
    private func complete(status: Int, reason: String?) {
        guard let record else { return }
        self.record = nil
        // The line is built only when it will be written.
        guard settings.accessLogger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "request_id": "\(record.id)", "method": "\(record.method)", "path": "\(record.path)",
            "status": "\(status)", "decision": "\(record.decision)", "reason": "\(reason ?? record.reason)",
            "duration_ms": "\(RequestRecord.milliseconds((NIODeadline.now() - record.started).nanoseconds))",
        ]
        if let provider = record.provider { metadata["provider"] = "\(provider)" }
        if let subject = record.subject { metadata["sub"] = "\(subject)" }
        if let keyID = record.keyID { metadata["kid"] = "\(keyID)" }
        if let upstream = record.upstreamNanoseconds {
            metadata["upstream_ms"] = "\(RequestRecord.milliseconds(upstream))"
        }
        settings.accessLogger.info("request", metadata: metadata)
    }
}

/// One request as the access log tells it. Never the query, a header value or the token: the path is
/// logged without its query, and identity is `sub` and `kid` only.
struct RequestRecord {
    let started: NIODeadline
    let id: String
    let method: String
    /// The request-target as received; the log shows its path only (`path`), computed when a line is written.
    let target: String
    var decision = "allowed"
    var reason = "ok"
    var provider: String?
    var subject: String?
    var keyID: String?
    var upstreamStarted: NIODeadline?
    var upstreamNanoseconds: Int64?
    var status = 0

    init(head: HTTPRequestHead, started: NIODeadline) {
        self.started = started
        method = head.method.rawValue
        target = head.uri
        id = Self.requestID(from: head.headers.first(name: "x-request-id"))
    }

    /// The target without its query (which may hold a token), at most 512 characters.
    var path: String {
        String(target[..<(target.firstIndex(of: "?") ?? target.endIndex)].prefix(512))
    }

    mutating func allowed(identity: VerifiedToken?) {
        decision = "allowed"
        reason = identity == nil ? "anonymous" : "ok"
        provider = identity?.provider
        subject = identity?.claims["sub"]?.stringValue
        keyID = identity?.keyID
    }

    mutating func refused(decision: String, reason: String) {
        self.decision = decision
        self.reason = reason
    }

    /// The client's `X-Request-Id` when it is a sane one (1–128 visible ASCII characters), else a new one.
    static func requestID(from header: String?) -> String {
        if let header, (1...128).contains(header.utf8.count),
            header.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            return header
        }
        return generatedRequestID(serial: counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// A random prefix per process (42 bits) and a counter (48 bits): unique without a getrandom() per
    /// request. 15 characters of the URL-safe base64 alphabet, because Swift keeps a string of up to 15 bytes
    /// inline: the id costs no allocation.
    static func generatedRequestID(serial: UInt64) -> String {
        String(unsafeUninitializedCapacity: 15) { buffer in
            writeDigits(processPrefix, count: 7, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<7]))
            writeDigits(serial, count: 8, into: UnsafeMutableBufferPointer(rebasing: buffer[7..<15]))
            return 15
        }
    }

    private static let processPrefix: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    private static let counter = Atomic<UInt64>(0)

    /// Writes the low `6 × count` bits of `value` as `count` base64url digits, most significant first.
    private static func writeDigits(_ value: UInt64, count: Int, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        let digits: StaticString = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
        for position in 0..<count {
            buffer[position] = digits.utf8Start[Int((value >> UInt64(6 * (count - 1 - position))) & 0x3F)]
        }
    }

    static func milliseconds(_ nanoseconds: Int64) -> String {
        let tenths = (nanoseconds + 5_000) / 10_000
        let whole = tenths / 100
        let fraction = tenths % 100
        return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
