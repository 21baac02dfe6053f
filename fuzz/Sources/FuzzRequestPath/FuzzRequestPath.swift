import PortcullisCore

/// Any bytes as a request path: normalized or refused, never a trap. What comes out is what rules are judged
/// on, so it must be a fixed point (normalizing it again changes nothing: the upstream cannot resolve it
/// differently), absolute, ASCII, and free of empty, `.` and `..` segments.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestPath(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let raw = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    guard let path = try? RequestPath(raw) else { return 0 }
    let normalized = path.normalized
    precondition(normalized.utf8.first == UInt8(ascii: "/"), "not absolute: \(normalized)")
    precondition(normalized.utf8.allSatisfy { $0 < 0x80 }, "not ASCII: \(normalized)")
    let segments = normalized.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    for (index, segment) in segments.enumerated() {
        precondition(segment != "." && segment != "..", "a dot segment survived: \(normalized) from \(raw)")
        precondition(!segment.isEmpty || index == segments.count - 1, "an empty segment: \(normalized) from \(raw)")
    }
    guard let again = try? RequestPath(normalized) else { fatalError("\(normalized) (from \(raw)) is refused") }
    precondition(again.normalized == normalized, "not a fixed point: \(raw) → \(normalized) → \(again.normalized)")
    return 0
}
