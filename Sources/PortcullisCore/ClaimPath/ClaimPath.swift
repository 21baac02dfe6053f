/// A compiled claim path, e.g. `.role`, `."https://postgrest-demo.de/role"`, `$.realm_access.roles[0]`: where in a
/// JWT's claims to find the role, as PostgREST's `jwt-role-claim-key` says.
///
/// Compiled once, when the configuration is loaded; evaluating it per request only walks the compiled segments.
/// The first character picks the grammar:
/// - `$`: the RFC 9535 JSONPath subset described at `JSONPathClaimPathParser`.
/// - `.` (or `[`): PostgREST's older syntax, described at `PostgRESTClaimPathParser`.
///
/// Evaluation never fails: a path that does not fit the claims (a missing member, a wrong type, an index out of
/// range) selects nothing.
public struct ClaimPath: Sendable, Hashable, CustomStringConvertible {
    private let source: String
    private let query: ClaimPathQuery

    /// Compiles `source`, or throws a `ClaimPathError` saying where it is wrong.
    public init(_ source: String) throws(ClaimPathError) {
        self.source = source
        switch source.unicodeScalars.first {
        case "$":
            query = try JSONPathClaimPathParser.compile(source)
        case ".", "[":
            // PostgREST's parser also accepts a path that starts with an index or a filter.
            query = try PostgRESTClaimPathParser.compile(source)
        case nil:
            throw ClaimPathError(message: "empty claim path", position: 0, source: source)
        default:
            throw ClaimPathError(
                message: "a claim path starts with '$' (JSONPath) or '.' (PostgREST syntax)", position: 0,
                source: source)
        }
    }

    /// The path as configured.
    public var description: String { source }

    /// Every value the path selects, in document order. Object members have no order, so a wildcard or filter
    /// over an object visits them in code-point order of their names.
    public func values(in root: JSONValue) -> [JSONValue] {
        var values: [JSONValue] = []
        query.forEachNode(from: root, root: root) { value in
            values.append(value)
            return true
        }
        return values
    }

    /// The first value the path selects, or nil: when several match, the first one wins.
    public func firstValue(in root: JSONValue) -> JSONValue? {
        var first: JSONValue?
        query.forEachNode(from: root, root: root) { value in
            first = value
            return false
        }
        return first
    }

    // The compiled form follows from the source, so the source alone is the identity. Compared by Unicode scalars
    // because that is how the path is read; canonically equivalent spellings may select differently.
    public static func == (lhs: ClaimPath, rhs: ClaimPath) -> Bool {
        lhs.source.unicodeScalars.elementsEqual(rhs.source.unicodeScalars)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(source)
    }
}
