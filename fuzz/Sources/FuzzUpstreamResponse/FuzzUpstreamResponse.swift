import NIOCore
import PortcullisWire

/// Any bytes as what an upstream sends: read as responses or refused, never a trap. Two properties hold
/// besides: the reading does not depend on how the bytes were split into reads (the first input byte picks
/// the cut), and every head the client would receive parses again, strictly, to the same status and framing,
/// so the proxy never writes a head a client could read two ways.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUpstreamResponse(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let cut = 1 + Int(input[0]) % (count - 1)
    let bytes = UnsafeRawBufferPointer(rebasing: input[1...])
    let whole = reading([bytes])
    let split = reading([
        UnsafeRawBufferPointer(rebasing: bytes[..<(cut - 1)]), UnsafeRawBufferPointer(rebasing: bytes[(cut - 1)...]),
    ])
    precondition(whole == split, "split at \(cut - 1) reads differently: \(whole) vs \(split)")
    return 0
}

/// The events read from `pieces`, fed one read each, then the end of the stream, as comparable text.
private func reading(_ pieces: [UnsafeRawBufferPointer]) -> [String] {
    var reader = UpstreamResponseReader(maxHeadBytes: 4096)
    var buffer = ByteBuffer()
    var events: [String] = []
    var body: [UInt8] = []
    func record(_ event: UpstreamResponseReader.Event) {
        switch event {
        case .head(let head):
            events.append("head \(head.status) \(head.framing) \(head.keepsAlive)")
            checkReparses(head)
        case .body(let bytes):
            body.append(contentsOf: bytes.readableBytesView)
        case .end(let trailers):
            events.append("body \(body)")
            body = []
            events.append("end \(trailers.map { String(buffer: $0) } ?? "")")
        }
    }
    do {
        for piece in pieces {
            buffer.writeBytes(piece)
            while let event = try reader.read(&buffer, allocator: ByteBufferAllocator()) { record(event) }
        }
        if let event = try reader.readEndOfStream(leftover: buffer) { record(event) }
    } catch {
        events.append("body \(body)")
        events.append("refused \(error)")
    }
    return events
}

/// What the client receives from `head` (with no framing line added) parses to the same status and framing.
private func checkReparses(_ head: UpstreamResponseHead) {
    var sent = head.forwarded
    sent.writeStaticString("\r\n")
    let again = sent.withUnsafeReadableBytes { bytes in
        try? UpstreamResponseHead(
            parsing: bytes, requestIsHEAD: head.framing == .none, allocator: ByteBufferAllocator())
    }
    guard let again else { fatalError("the client's head does not parse: \(String(buffer: sent).debugDescription)") }
    precondition(again.status == head.status, "status changed: \(head.status) → \(again.status)")
    if head.status >= 200 && head.status != 101 {
        // Hop-by-hop lines are gone, so the framing can only be a length, or nothing.
        switch head.framing {
        case .contentLength, .none: precondition(again.framing == head.framing || head.framing == .none)
        case .chunked, .untilClose: precondition(again.framing == .untilClose)
        }
    }
}
