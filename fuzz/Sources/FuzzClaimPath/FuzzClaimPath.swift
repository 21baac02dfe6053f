import PortcullisCore

/// A claim path (the first line) and a claim set (the rest, or a Keycloak-shaped one when the rest is not
/// JSON): compiled or refused, then evaluated, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClaimPath(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    guard let source = lines.first, let path = try? ClaimPath(String(source)) else { return 0 }
    let claims = lines.count > 1 ? (try? JSONParser().parse(String(lines[1]))) ?? keycloak : keycloak
    _ = path.values(in: claims)
    return 0
}

let keycloak: JSONValue = [
    "sub": "u1", "role": "web", "https://example.com/role": "admin", "scope": "read write",
    "realm_access": ["roles": ["admin", "user"]], "resource_access": ["app": ["roles": ["editor"]]],
    "n": 3, "nested": ["a": ["b": [["c": "deep"]]]],
]
