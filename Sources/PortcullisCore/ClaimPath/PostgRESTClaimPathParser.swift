/// Compiles PostgREST's own role-claim-key syntax (its `JSPath`, as in v12), e.g. `.realm_access.roles[0]`,
/// `."https://postgrest-demo.de/role"` or `.roles[?(@ ^== "adm")]`:
///
/// - `.key`: a member; the key is letters and digits (any script), `_`, `$`, `@`.
/// - `."quoted key"`: a member with any name.
/// - `[N]`: an array element; `N` is a non-negative decimal number (leading zeros allowed, as in PostgREST).
/// - `[?(@ OP "value")]`, last only: the string elements of an array for which `element OP value` holds, with
///   `==`, `!=`, `^==` (starts with), `==^` (ends with), `*==` (contains). Non-string elements never match.
///
/// Deliberate differences from PostgREST, all accepting more rather than less:
/// - An unquoted key may also contain `-` (PostgREST needs `."a-b"`).
/// - In a quoted key or value, `\"` and `\\` are escapes; PostgREST has no escapes, so there `"` cannot appear
///   at all and `\\` means two backslashes. Any other backslash is kept as written.
/// - Blank space is allowed after `[?(` and before `)]`, not only around the operator.
/// - PostgREST yields only the first filter match; `ClaimPath.values(in:)` yields every match, and
///   `firstValue(in:)` is PostgREST's result.
/// - An index larger than 2^53 − 1 is a compile error (PostgREST would wrap it around `Int`).
/// As in PostgREST v12, negative indexes are refused (the `$` JSONPath syntax has them), the filter comes last,
/// and there are no string slices (`[0:5]`, added in PostgREST v13).
struct PostgRESTClaimPathParser {
    private var scanner: ClaimPathScanner

    static func compile(_ source: String) throws(ClaimPathError) -> ClaimPathQuery {
        var parser = PostgRESTClaimPathParser(scanner: ClaimPathScanner(source))
        return try parser.parsePath()
    }

    private init(scanner: ClaimPathScanner) {
        self.scanner = scanner
    }

    private mutating func parsePath() throws(ClaimPathError) -> ClaimPathQuery {
        var segments: [ClaimPathSegment] = []
        repeat {
            switch scanner.current {
            case ".":
                scanner.advance()
                segments.append(ClaimPathSegment(.member(try parseKey())))
            case "[" where scanner.peek(1) == "?":
                segments.append(ClaimPathSegment(.stringMatch(try parseFilter())))
                guard scanner.isAtEnd else { throw scanner.error("a filter must be the last step of the path") }
            case "[":
                scanner.advance()
                segments.append(ClaimPathSegment(.index(try parseIndex())))
            default:
                throw scanner.error("expected '.' or '[', found \(scanner.currentDescription)")
            }
        } while !scanner.isAtEnd
        return ClaimPathQuery(segments: segments)
    }

    private mutating func parseKey() throws(ClaimPathError) -> String {
        if scanner.current == "\"" {
            return try parseQuotedString(what: "key")
        }
        let start = scanner.position
        while let scalar = scanner.current, Self.isKeyScalar(scalar) {
            scanner.advance()
        }
        guard scanner.position > start else {
            throw scanner.error("expected a key or a quoted key after '.'")
        }
        return scanner.text(from: start, to: scanner.position)
    }

    /// After `[`: `N]`.
    private mutating func parseIndex() throws(ClaimPathError) -> Int {
        if scanner.current == "-" {
            throw scanner.error("negative array indexes need the '$' JSONPath syntax, e.g. $.roles[-1]")
        }
        guard let index = try scanner.scanIndexMagnitude() else {
            throw scanner.error("expected an array index or a filter")
        }
        try scanner.expect("]", "expected ']'")
        return index
    }

    /// `[?(@ OP "value")]`.
    private mutating func parseFilter() throws(ClaimPathError) -> ClaimPathStringMatch {
        scanner.advance(by: 2)
        try scanner.expect("(", "expected '(' after '[?'")
        scanner.skipBlankSpace()
        try scanner.expect("@", "expected '@'")
        scanner.skipBlankSpace()
        // Longest operators first: `==^` must not be read as `==` followed by `^`.
        let operators = ClaimPathStringMatch.Operator.allCases.sorted { $0.rawValue.count > $1.rawValue.count }
        guard let operation = operators.first(where: { scanner.consume($0.rawValue) }) else {
            throw scanner.error("unknown filter operator; expected ==, !=, ^==, ==^ or *==")
        }
        scanner.skipBlankSpace()
        guard scanner.current == "\"" else { throw scanner.error("expected a double-quoted string") }
        let operand = try parseQuotedString(what: "string")
        scanner.skipBlankSpace()
        try scanner.expect(")", "expected ')'")
        try scanner.expect("]", "expected ']'")
        return ClaimPathStringMatch(operation: operation, operand: operand)
    }

    /// A double-quoted string where `\"` and `\\` are escapes and any other backslash is kept.
    private mutating func parseQuotedString(what: String) throws(ClaimPathError) -> String {
        let start = scanner.position
        scanner.advance()
        var text = String.UnicodeScalarView()
        while let scalar = scanner.current {
            scanner.advance()
            switch scalar {
            case "\"":
                return String(text)
            case "\\" where scanner.current == "\"" || scanner.current == "\\":
                if let escaped = scanner.current { text.append(escaped) }
                scanner.advance()
            default:
                text.append(scalar)
            }
        }
        throw scanner.error("unterminated quoted \(what)", at: start)
    }

    /// Parsec's `alphaNum` (Unicode letters and numbers) plus `_$@`, as PostgREST allows, and `-`.
    private static func isKeyScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "_", "$", "@", "-":
            return true
        default:
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                .decimalNumber, .letterNumber, .otherNumber:
                return true
            default:
                return false
            }
        }
    }
}
