import NIOCore
import NIOEmbedded
import NIOHTTP1
import PortcullisWire

/// Any bytes as what a client sends, read by `ClientRequestReader` and by NIOHTTP1's own decoder (llhttp). The
/// reader accepts a subset of what llhttp accepts and reads it the same way: every request it delivers, as far as
/// it delivered it, llhttp delivers too, with the same method, target, version, header lines, body bytes and
/// trailers. Where the reader refuses and llhttp reads on, that is the subset. Besides, the reading does not
/// depend on how the bytes were split into reads (the first input byte picks the cut).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let cut = Int(input[0]) % count
    let bytes = UnsafeRawBufferPointer(rebasing: input[1...])
    let ours = readingOurs([bytes])
    let split = readingOurs([
        UnsafeRawBufferPointer(rebasing: bytes[..<cut]), UnsafeRawBufferPointer(rebasing: bytes[cut...]),
    ])
    precondition(ours == split, "split at \(cut) reads differently:\n\(ours)\nvs\n\(split)")
    let theirs = readingNIO(bytes)
    compare(ours, theirs, input: bytes)
    return 0
}

/// A header or trailer line, as bytes: `String`'s `==` would take two spellings of one character as equal.
private struct Field: Equatable, CustomStringConvertible {
    let name: [UInt8]
    let value: [UInt8]

    init(_ name: String, _ value: String) {
        self.name = Array(name.utf8)
        // Trailing whitespace is not part of a field value (RFC 9110 §5.5): Portcullis drops it, llhttp keeps it.
        var bytes = Array(value.utf8)
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        self.value = bytes
    }

    var description: String { "\(quoted(name)): \(quoted(value))" }
}

/// One request as far as it was delivered: its head, the body bytes so far (however they were cut into parts),
/// and its end, once there.
private struct Request: Equatable, CustomStringConvertible {
    let method: HTTPMethod
    let uri: [UInt8]
    let version: HTTPVersion
    let headers: [Field]
    /// NIOHTTP1's verdict: from llhttp for NIO's head, from the header lines for ours. The relay closes after a
    /// request that is not kept alive, and llhttp refuses whatever follows one.
    let keepsAlive: Bool
    var body: [UInt8] = []
    var ended = false
    var trailers: [Field]?

    init(_ head: HTTPRequestHead) {
        method = head.method
        uri = Array(head.uri.utf8)
        version = head.version
        headers = head.headers.map { Field($0.name, $0.value) }
        keepsAlive = head.isKeepAlive
    }

    /// Whether llhttp takes the bytes after this request as another protocol's and stops there: CONNECT, or an
    /// Upgrade header with `Connection: upgrade`. Any Upgrade header counts here, a superset.
    var endsHTTP: Bool {
        method == .CONNECT || headers.contains { Array($0.name.map { $0 | 0x20 }) == Array("upgrade".utf8) }
    }

    var description: String {
        var text = "\(method) \(quoted(uri)) \(version) \(headers)\(keepsAlive ? "" : " close") body \(quoted(body))"
        if ended { text += " end \(trailers.map { "\($0)" } ?? "nil")" }
        return text
    }
}

/// The requests read, and how the reading stopped.
private struct Reading: Equatable, CustomStringConvertible {
    var requests: [Request] = []
    var failure: String?

    mutating func record(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            precondition(requests.last?.ended ?? true, "a head before the end of \(requests.last!)")
            requests.append(Request(head))
        case .body(let bytes):
            guard let last = requests.indices.last, !requests[last].ended else {
                fatalError("a body outside a request")
            }
            requests[last].body += bytes.readableBytesView
        case .end(let trailers):
            guard let last = requests.indices.last, !requests[last].ended else {
                fatalError("an end outside a request")
            }
            requests[last].ended = true
            requests[last].trailers = trailers.map { $0.map { Field($0.name, $0.value) } }
        }
    }

    var description: String {
        requests.enumerated().map { "  \($0): \($1)\n" }.joined() + "  then \(failure ?? "more bytes needed")"
    }
}

/// What `ClientRequestReader` reads from `pieces`, fed one read each.
private func readingOurs(_ pieces: [UnsafeRawBufferPointer]) -> Reading {
    var reader = ClientRequestReader(maxHeadBytes: 16384)
    var buffer = ByteBuffer()
    var reading = Reading()
    do {
        for piece in pieces {
            buffer.writeBytes(piece)
            while let part = try reader.read(&buffer) { reading.record(part) }
        }
    } catch {
        reading.failure = "refused: \(error)"
    }
    return reading
}

/// What NIOHTTP1's decoder reads from `bytes`, fed in one read.
private func readingNIO(_ bytes: UnsafeRawBufferPointer) -> Reading {
    let channel = EmbeddedChannel(
        handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
    var reading = Reading()
    do {
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
    } catch {
        reading.failure = "refused: \(error)"
    }
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { reading.record(part) }
    _ = try? channel.finish()
    return reading
}

/// Every request our reader delivered, NIO delivered the same way, up to the first one after which llhttp stops:
/// an upgrade, or a request not kept alive.
private func compare(_ ours: Reading, _ theirs: Reading, input: UnsafeRawBufferPointer) {
    func differ(_ what: String) -> Never {
        fatalError("\(what)\ninput: \(quoted(Array(input)))\nours:\n\(ours)\nNIO:\n\(theirs)")
    }
    for (index, request) in ours.requests.enumerated() {
        guard index < theirs.requests.count else { differ("request \(index): NIO has no such request") }
        let other = theirs.requests[index]
        guard request.method == other.method, request.uri == other.uri, request.version == other.version,
            request.headers == other.headers
        else { differ("request \(index): the heads differ") }
        // Closing where llhttp would keep the connection is stricter (NIOHTTP1 closes on a repeated keep-alive, say).
        guard other.keepsAlive || !request.keepsAlive else { differ("request \(index): kept alive, llhttp closes") }
        if request.ended {
            guard other.ended, other.body == request.body else { differ("request \(index): the bodies differ") }
            guard other.trailers == request.trailers else { differ("request \(index): the trailers differ") }
        } else {
            guard other.body.starts(with: request.body) else { differ("request \(index): the bodies differ") }
        }
        if request.endsHTTP || !other.keepsAlive { return }
    }
}

private func quoted(_ bytes: [UInt8]) -> String {
    var text = "\""
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "\""): text += "\\\""
        case UInt8(ascii: "\\"): text += "\\\\"
        case UInt8(ascii: "\r"): text += "\\r"
        case UInt8(ascii: "\n"): text += "\\n"
        case UInt8(ascii: "\t"): text += "\\t"
        case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
        default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }
    }
    return text + "\""
}
