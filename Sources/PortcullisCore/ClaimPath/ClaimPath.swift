// TEMPORARY STUB — replaced by the real ClaimPath implementation.
public struct ClaimPath: Sendable, Hashable {
    public init(_ source: String) {}
    public func firstValue(in root: JSONValue) -> JSONValue? { nil }
}
