import NIOCore
import NIOHTTP1
import PortcullisWire

/// What an upstream connection reports to the client connection whose request it carries. Both live on the
/// same event loop, so these are plain calls.
protocol UpstreamExchangeDelegate: AnyObject {
    func upstreamReceived(_ event: UpstreamResponseReader.Event)
    func upstreamReadComplete()
    /// The connection closed or failed; `error` is nil for a plain close.
    func upstreamClosed(error: (any Error)?)
    func upstreamWritabilityChanged(isWritable: Bool)
    /// Whether the client can take more response bytes now; when false the upstream is not read.
    var clientIsWritable: Bool { get }
}

/// One keep-alive HTTP/1.1 connection to the upstream, the only handler of its pipeline: requests go out as
/// bytes (`UpstreamRequestHead.bytes`, then the body as the client sent it, re-chunked when chunked), and
/// responses are read by `UpstreamResponseReader`. It relays one exchange at a time to its delegate, reads
/// only while the client can take the bytes, and returns to its pool when the exchange ends cleanly.
final class UpstreamConnection {
    let channel: any Channel
    private var context: ChannelHandlerContext?
    private weak var delegate: (any UpstreamExchangeDelegate)?
    /// Whether a response is being read; a connection is reusable only between exchanges.
    private(set) var inExchange = false
    /// Whether the upstream said it would close (`Connection: close`, HTTP/1.0).
    private(set) var upstreamWillClose = false
    private(set) var isOpen = true
    private var pendingRead = false
    /// The pool this connection is parked in, told when it closes there. Weak: a pool retired by a reload is
    /// not kept alive by the connections it closed.
    weak var parkedIn: UpstreamPool?
    /// Requests carried so far, for reuse decisions (a first request never needs a retry).
    private(set) var exchanges = 0
    private var reader = UpstreamResponseReader()
    /// Bytes read and not yet consumed by the reader: part of a head, or what follows a `101`.
    private var unread: ByteBuffer?
    /// Set when the connection is handed over to a glue after a `101`.
    private var handedOver = false
    /// Whether the request being sent has a chunked body.
    private var requestChunked = false

    init(channel: any Channel) {
        self.channel = channel
    }
}

extension UpstreamConnection {
    /// Starts an exchange: the head is written (not flushed: the caller flushes with or after the body).
    /// - Parameter chunked: whether the request's body is chunked; its parts are then framed as chunks.
    func begin(head: ByteBuffer, isHEAD: Bool, chunked: Bool, delegate: any UpstreamExchangeDelegate) {
        precondition(!inExchange)
        inExchange = true
        exchanges += 1
        self.delegate = delegate
        requestChunked = chunked
        reader.expectResponse(toHEAD: isHEAD)
        context?.write(NIOAny(head), promise: nil)
    }

    /// Part of the request's body (not flushed).
    func writeBody(_ buffer: ByteBuffer) {
        context?.writeBody(buffer, chunked: requestChunked)
    }

    /// The request's end, flushed: a chunked body's last chunk, with no trailer section (`forward(_:to:exchange:)`
    /// says why).
    func writeEnd() {
        guard let context else { return }
        guard requestChunked else {
            context.flush()
            return
        }
        context.writeAndFlush(
            NIOAny(ChunkedFraming.lastChunk(trailers: nil, allocator: channel.allocator)), promise: nil)
    }

    func flush() { context?.flush() }

    var isWritable: Bool { channel.isWritable }

    /// The client has room again: read what the upstream has been holding.
    func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    /// The exchange ended with the response's `.end`; the connection may be parked.
    func finishExchange() {
        inExchange = false
        delegate = nil
    }

    /// Ends the connection: after a failed or abandoned exchange it cannot be reused.
    func close() {
        delegate = nil
        inExchange = false
        guard isOpen else { return }
        isOpen = false
        channel.close(promise: nil)
    }

    var isReusable: Bool { isOpen && !inExchange && !upstreamWillClose }

    /// Hands the connection over to `glue` after a `101 Switching Protocols`: this handler leaves, and bytes
    /// already read past the `101` flow on to the glue.
    func becomeRaw(glue: GlueHandler) throws {
        delegate = nil
        inExchange = false
        isOpen = false  // never back to a pool
        handedOver = true
        guard let context else { return }
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(glue)
        pipeline.removeHandler(context: context, promise: nil)
    }

    /// Feeds the reader what has been read and delivers its events, until it needs more bytes or the exchange
    /// is over.
    private func deliverResponses(context: ChannelHandlerContext) {
        guard var bytes = unread else { return }
        unread = nil
        while !handedOver {
            guard let delegate else {
                // Bytes no request asked for: the upstream is confused; never reuse it.
                if bytes.readableBytes > 0 { close() }
                return
            }
            let event: UpstreamResponseReader.Event?
            do {
                event = try reader.read(&bytes, allocator: context.channel.allocator)
            } catch {
                fail(error, context: context)
                return
            }
            guard let event else { break }
            switch event {
            case .head(let head) where !head.isInterim:
                upstreamWillClose = !head.keepsAlive
            case .end where bytes.readableBytes > 0 && !reader.hasSwitchedProtocols:
                // More bytes after a complete response that nothing has asked for yet.
                upstreamWillClose = true
            default:
                break
            }
            if reader.hasSwitchedProtocols {
                // What followed the `101` in this read belongs to the new protocol: it waits where the handover
                // (`removeHandler`) passes it on to the glue.
                unread = bytes.readableBytes > 0 ? bytes : nil
                delegate.upstreamReceived(event)
                return
            }
            delegate.upstreamReceived(event)
        }
        if bytes.readableBytes > 0 { unread = bytes }
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        let delegate = self.delegate
        self.delegate = nil
        isOpen = false
        context.close(promise: nil)
        delegate?.upstreamClosed(error: error)
    }
}

extension UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Leaving after a `101`: what was read past it belongs to the new protocol, and goes on to the glue.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if let unread, unread.readableBytes > 0 {
            self.unread = nil
            context.fireChannelRead(NIOAny(unread))
        }
        context.leavePipeline(removalToken: removalToken)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        if unread == nil {
            unread = incoming
        } else {
            unread!.writeBuffer(&incoming)
        }
        deliverResponses(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let delegate, !delegate.clientIsWritable {
            pendingRead = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        if let delegate {
            // A body that lasts until the close ends here; anything else cut short is a failure.
            if let end = try? reader.readEndOfStream(leftover: unread ?? ByteBuffer()) {
                delegate.upstreamReceived(end)
                if self.delegate == nil { return }
            }
            self.delegate = nil
            delegate.upstreamClosed(error: nil)
        } else {
            parkedIn?.parkedConnectionClosed(self)
        }
        parkedIn = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let delegate = self.delegate
        self.delegate = nil
        isOpen = false
        context.close(promise: nil)
        delegate?.upstreamClosed(error: error)
    }
}

/// The upstream connection's pipeline.
enum UpstreamPipeline {
    static func configure(_ channel: any Channel) throws {
        // No codec: UpstreamConnection writes requests as bytes and reads responses itself.
        try channel.pipeline.syncOperations.addHandler(UpstreamConnection(channel: channel))
    }
}

extension ChannelHandlerContext {
    /// Writes part of a body the relay passes on (not flushed): as it is, or as one chunk when the relay
    /// chunks it. Both directions use it: responses to an HTTP/1.1 client, chunked requests to the upstream.
    func writeBody(_ buffer: ByteBuffer, chunked: Bool) {
        guard buffer.readableBytes > 0 else { return }
        if chunked {
            write(NIOAny(ChunkedFraming.chunkSize(buffer.readableBytes, allocator: channel.allocator)), promise: nil)
            write(NIOAny(buffer), promise: nil)
            write(NIOAny(ChunkedFraming.chunkEnd), promise: nil)
        } else {
            write(NIOAny(buffer), promise: nil)
        }
    }
}
