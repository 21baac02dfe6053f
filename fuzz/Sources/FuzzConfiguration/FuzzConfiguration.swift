import PortcullisConfig
import PortcullisCore

/// Any bytes as config.json: decoded, or refused with errors, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfiguration(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    _ = PortcullisConfiguration.decode(bytes, environment: ["PORTCULLIS_SECRET": String(repeating: "s", count: 48)])
    return 0
}
