import PortcullisCore

/// Any bytes: a value or a parse error, never a trap. And a value prints back (`compactJSON`, what the proxy
/// forwards in claim headers) to JSON that parses to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let value = try? JSONParser().parse(UnsafeRawBufferPointer(start: start, count: count)) else { return 0 }
    let printed = value.compactJSON
    guard let again = try? JSONParser().parse(printed) else {
        fatalError("compactJSON printed invalid JSON: \(printed)")
    }
    precondition(again == value, "compactJSON does not round-trip: \(printed)")
    return 0
}
