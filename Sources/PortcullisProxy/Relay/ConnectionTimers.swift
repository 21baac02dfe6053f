import NIOCore
import NIOHTTP1

/// The header-read deadline of one client connection: started when a request's first bytes arrive, ended
/// when its head is complete. Loop-confined.
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
    /// `now` is when they were read; `context` is the connection's, which the 408 is written through.
    func bytesArrived(at now: NIODeadline, context: ChannelHandlerContext) {
        guard awaitingHead, deadline == nil else { return }
        let deadline = now + timeout
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

    /// A client too slow to send its head gets a 408 and the connection closes (on a pipelined connection,
    /// possibly in the middle of a response: this is the end of it anyway).
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

/// Writing Portcullis's own responses, as bytes: the relay has no HTTP encoder.
enum ResponseWriting {
    /// The whole response: status line, the response's headers, then its JSON body's.
    static func bytes(
        for response: ProxyResponse, closing: Bool, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var bytes = allocator.buffer(capacity: 256 + response.body.utf8.count)
        bytes.writeStaticString("HTTP/1.1 ")
        bytes.writeString(String(response.status))
        bytes.writeStaticString(" ")
        bytes.writeString(HTTPResponseStatus(statusCode: response.status).reasonPhrase)
        bytes.writeStaticString("\r\n")
        for header in response.headers { bytes.writeHeaderLine(name: header.name, value: header.value) }
        bytes.writeStaticString("Content-Type: application/json\r\nContent-Length: ")
        bytes.writeString(String(response.body.utf8.count))
        bytes.writeStaticString("\r\nCache-Control: no-store\r\n")
        if closing { bytes.writeStaticString("Connection: close\r\n") }
        bytes.writeStaticString("\r\n")
        bytes.writeString(response.body)
        return bytes
    }

    /// Writes the whole response and flushes.
    static func write(_ response: ProxyResponse, closing: Bool, context: ChannelHandlerContext) {
        context.writeAndFlush(
            NIOAny(bytes(for: response, closing: closing, allocator: context.channel.allocator)), promise: nil)
    }
}

extension ByteBuffer {
    /// `name: value` CRLF. The name and value are clean already (they passed a reader, or Portcullis made them).
    mutating func writeHeaderLine(name: String, value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }
}
