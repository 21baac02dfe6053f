/// Why a claim path did not compile, and where.
public struct ClaimPathError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. "expected ']'".
    public let message: String
    /// Where the problem is: a 0-based offset into `source` counted in Unicode scalars (not `Character`s, not
    /// UTF-8 bytes). Equals the scalar count of `source` when the path ends too early.
    public let position: Int
    /// The claim path as configured.
    public let source: String

    public init(message: String, position: Int, source: String) {
        self.message = message
        self.position = position
        self.source = source
    }

    /// E.g. `invalid claim path ".roles[": expected an array index or a filter at position 7`.
    public var description: String {
        "invalid claim path \"\(source)\": \(message) at position \(position)"
    }
}
