import NIOCore
import NIOHTTP1

/// The header-read deadline of one client connection, shared by the two handlers that see it: the raw-bytes
/// handler in front of the HTTP decoder (which knows when a request's first byte arrives) and the connection
/// handler (which knows when its head is complete). Loop-confined.
///
/// The timer is lazy: it is armed when a request's first bytes arrive and none is armed, and when it fires it
/// looks at the head in progress then. A head that arrived meanwhile leaves nothing to do; a later request's
/// head still in progress re-arms it for that request's own deadline. So a keep-alive connection schedules
/// about one timer per `timeout`, not two timer operations per request.
final class HeadDeadline {
    let timeout: TimeAmount
    /// Between requests: the next byte starts the clock.
    var awaitingHead = true
    /// When the head in progress must be complete; nil while no head is in progress.
    private var deadline: NIODeadline?
    private var scheduled: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// The first bytes of a request arrived: the head must be complete within `timeout` (slowloris).
    /// `context` is the raw-bytes handler's, in front of the HTTP codec, which the 408 is written through.
    func bytesArrived(context: ChannelHandlerContext) {
        guard awaitingHead, deadline == nil else { return }
        let deadline = NIODeadline.now() + timeout
        self.deadline = deadline
        if scheduled == nil { arm(at: deadline, context: context) }
    }

    /// The head is complete.
    func headArrived() {
        awaitingHead = false
        deadline = nil
    }

    /// A response is complete and the connection stays open: the next request's clock starts at its first byte.
    func awaitNextHead() {
        awaitingHead = true
    }

    func cancel() {
        deadline = nil
        scheduled?.cancel()
        scheduled = nil
    }

    private func arm(at deadline: NIODeadline, context: ChannelHandlerContext) {
        scheduled = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.fired(context: context)
        }
    }

    private func fired(context: ChannelHandlerContext) {
        scheduled = nil
        guard let deadline else { return }
        if deadline <= .now() {
            self.deadline = nil
            Self.expire(context)
        } else {
            // The head this timer was armed for arrived; a later one is in progress.
            arm(at: deadline, context: context)
        }
    }

    /// A client too slow to send its head gets a 408 and the connection closes. Written as raw bytes, in front
    /// of the HTTP encoder: the encoder may be mid-response on a pipelined connection, and this is the end of
    /// it anyway.
    private static func expire(_ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 160)
        let body = #"{"error":"request_timeout","message":"The request head was not received in time"}"#
        buffer.writeString(
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
        context.close(promise: nil)
    }
}

/// In front of the HTTP decoder: starts the head deadline when a request's first bytes arrive.
final class HeadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let deadline: HeadDeadline

    init(deadline: HeadDeadline) {
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.bytesArrived(context: context)
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.cancel()
    }
}

/// Writing Portcullis's own responses.
enum ResponseWriting {
    static func head(for response: ProxyResponse, closing: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        for header in response.headers { headers.add(name: header.name, value: header.value) }
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(response.body.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if closing { headers.add(name: "Connection", value: "close") }
        return HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
    }

    /// Writes the whole response through `context` (which must be at or after the HTTP encoder) and flushes.
    static func write(_ response: ProxyResponse, closing: Bool, context: ChannelHandlerContext) {
        let head = head(for: response, closing: closing)
        var body = context.channel.allocator.buffer(capacity: response.body.utf8.count)
        body.writeString(response.body)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
    }
}
