/// Compiles the RFC 9535 JSONPath subset claim paths use, e.g. `$.realm_access.roles[0]` or
/// `$.roles[?search(@, '^adm')]`:
///
/// - Segments `.name`, `.*`, and `[selectors]` with selectors `'name'` / `"name"` (RFC escapes incl. `\uXXXX`),
///   `N` (negative counts from the end), `*`, and `?filter`; several selectors may be separated by commas.
/// - Filters: `@` and `$` queries, literals (strings, numbers, `true`, `false`, `null`), `==` `!=` `<` `<=`
///   `>` `>=`, `&&` `||` `!`, parentheses, existence tests, and the functions `length`, `count`, `value`,
///   `match` and `search`, type-checked as RFC 9535 §2.4.3 requires.
///
/// Not supported, each refused with its own error: descendant segments (`..`) and array slices (`[1:2]`).
/// Deliberate differences from RFC 9535:
/// - The pattern of `match()` / `search()` must be a string literal, so it is compiled (and checked) with the
///   path, never per request. It is a Swift `Regex` matching Unicode scalars, which accepts more syntax than
///   I-Regexp (RFC 9485), and its `.` excludes every newline, not only `\n` and `\r`.
/// - Member names are looked up in a Swift `Dictionary`, so names that are canonically equivalent Unicode
///   (e.g. composed and decomposed "é") match each other.
struct JSONPathClaimPathParser {
    /// Bounds recursion in the parser (and so in evaluation) for deeply nested filters.
    private static let maximumNesting = 32

    private var scanner: ClaimPathScanner
    private var nesting = 0

    static func compile(_ source: String) throws(ClaimPathError) -> ClaimPathQuery {
        var parser = JSONPathClaimPathParser(scanner: ClaimPathScanner(source))
        return try parser.parsePath()
    }

    private init(scanner: ClaimPathScanner) {
        self.scanner = scanner
    }

    private mutating func parsePath() throws(ClaimPathError) -> ClaimPathQuery {
        try scanner.expect("$", "expected '$'")
        let query = try parseSegments()
        let blankStart = scanner.position
        let hasTrailingBlank = scanner.skipBlankSpace()
        guard scanner.isAtEnd else { throw scanner.error("unexpected \(scanner.currentDescription)") }
        // RFC 9535 allows blank space only before a segment, so not at the very end.
        guard !hasTrailingBlank else { throw scanner.error("unexpected blank space at the end", at: blankStart) }
        return query
    }

    // MARK: - Segments and selectors

    /// The segments after `$` or `@`. Stops, before any blank space it looked past, at the first thing that is
    /// not a segment; the caller decides whether that is allowed there.
    private mutating func parseSegments() throws(ClaimPathError) -> ClaimPathQuery {
        var segments: [ClaimPathSegment] = []
        while true {
            let beforeBlank = scanner.position
            scanner.skipBlankSpace()
            switch scanner.current {
            case "." where scanner.peek(1) == ".":
                throw scanner.error("descendant segments ('..') are not supported")
            case ".":
                scanner.advance()
                segments.append(ClaimPathSegment(try parseShorthandSelector()))
            case "[":
                segments.append(try parseBracketedSelection())
            default:
                scanner.rewind(to: beforeBlank)
                return ClaimPathQuery(segments: segments)
            }
        }
    }

    /// After `.`: `*` or a member name (RFC 9535 `member-name-shorthand`).
    private mutating func parseShorthandSelector() throws(ClaimPathError) -> ClaimPathSelector {
        if scanner.consume("*") { return .wildcard }
        let start = scanner.position
        guard let first = scanner.current, Self.isNameFirst(first) else {
            throw scanner.error("expected a member name or '*' after '.'")
        }
        scanner.advance()
        while let scalar = scanner.current, Self.isNameFirst(scalar) || ClaimPathScanner.isDecimalDigit(scalar) {
            scanner.advance()
        }
        return .member(scanner.text(from: start, to: scanner.position))
    }

    /// `[selector, ...]`.
    private mutating func parseBracketedSelection() throws(ClaimPathError) -> ClaimPathSegment {
        scanner.advance()
        var selectors: [ClaimPathSelector] = []
        repeat {
            scanner.skipBlankSpace()
            selectors.append(try parseSelector())
            scanner.skipBlankSpace()
        } while scanner.consume(",")
        try scanner.expect("]", "expected ']'")
        return ClaimPathSegment(selectors: selectors)
    }

    private mutating func parseSelector() throws(ClaimPathError) -> ClaimPathSelector {
        switch scanner.current {
        case "'", "\"":
            return .member(try parseStringLiteral())
        case "*":
            scanner.advance()
            return .wildcard
        case "?":
            try enterNesting()
            defer { nesting -= 1 }
            scanner.advance()
            scanner.skipBlankSpace()
            return .filter(try parseLogicalOr())
        case ":":
            throw scanner.error("array slices are not supported")
        case "-", .some("0"..."9"):
            let index = try parseIndex()
            let afterIndex = scanner.position
            scanner.skipBlankSpace()
            if scanner.current == ":" { throw scanner.error("array slices are not supported") }
            scanner.rewind(to: afterIndex)
            return .index(index)
        default:
            throw scanner.error("expected a quoted name, an index, '*' or a filter")
        }
    }

    /// RFC 9535 `int`: `0`, or an optional `-` and digits without a leading zero.
    private mutating func parseIndex() throws(ClaimPathError) -> Int {
        let start = scanner.position
        let isNegative = scanner.consume("-")
        if scanner.current == "0" && (isNegative || ClaimPathScanner.isDecimalDigit(scanner.peek(1))) {
            throw scanner.error(isNegative ? "-0 is not a valid index" : "an index has no leading zeros", at: start)
        }
        guard let magnitude = try scanner.scanIndexMagnitude(indexStart: start) else {
            throw scanner.error("expected digits")
        }
        return isNegative ? -magnitude : magnitude
    }

    // MARK: - Filter expressions

    /// Called at the scalar that opens a nested construct, so a too-deep one is reported there.
    private mutating func enterNesting() throws(ClaimPathError) {
        nesting += 1
        guard nesting <= Self.maximumNesting else { throw scanner.error("filter is nested too deeply") }
    }

    /// `a || b || ...`; leaves the position before any blank space after the last operand.
    private mutating func parseLogicalOr() throws(ClaimPathError) -> ClaimPathLogicalExpression {
        var alternatives = [try parseLogicalAnd()]
        while true {
            let beforeBlank = scanner.position
            scanner.skipBlankSpace()
            guard scanner.consume("||") else {
                scanner.rewind(to: beforeBlank)
                break
            }
            scanner.skipBlankSpace()
            alternatives.append(try parseLogicalAnd())
        }
        return alternatives.count == 1 ? alternatives[0] : .or(alternatives)
    }

    private mutating func parseLogicalAnd() throws(ClaimPathError) -> ClaimPathLogicalExpression {
        var conditions = [try parseBasicExpression()]
        while true {
            let beforeBlank = scanner.position
            scanner.skipBlankSpace()
            guard scanner.consume("&&") else {
                scanner.rewind(to: beforeBlank)
                break
            }
            scanner.skipBlankSpace()
            conditions.append(try parseBasicExpression())
        }
        return conditions.count == 1 ? conditions[0] : .and(conditions)
    }

    /// A parenthesized expression, a comparison, or a test, each possibly negated as RFC 9535 allows.
    private mutating func parseBasicExpression() throws(ClaimPathError) -> ClaimPathLogicalExpression {
        let start = scanner.position
        if scanner.current == "!" && scanner.peek(1) != "=" {
            try enterNesting()
            defer { nesting -= 1 }
            scanner.advance()
            scanner.skipBlankSpace()
            if scanner.current == "(" { return .not(try parseParenthesized()) }
            let operandStart = scanner.position
            let negated = try test(try parseOperand(), at: operandStart)
            let afterTest = scanner.position
            scanner.skipBlankSpace()
            if parseComparisonOperator() != nil {
                throw scanner.error("'!' cannot negate a comparison; write !(a == b)", at: start)
            }
            scanner.rewind(to: afterTest)
            return .not(negated)
        }
        if scanner.current == "(" { return try parseParenthesized() }

        let left = try parseOperand()
        let afterLeft = scanner.position
        scanner.skipBlankSpace()
        guard let comparison = parseComparisonOperator() else {
            scanner.rewind(to: afterLeft)
            return try test(left, at: start)
        }
        scanner.skipBlankSpace()
        let rightStart = scanner.position
        let right = try parseOperand()
        return .comparison(try comparable(left, at: start), comparison, try comparable(right, at: rightStart))
    }

    private mutating func parseParenthesized() throws(ClaimPathError) -> ClaimPathLogicalExpression {
        try enterNesting()
        defer { nesting -= 1 }
        scanner.advance()
        scanner.skipBlankSpace()
        let expression = try parseLogicalOr()
        scanner.skipBlankSpace()
        try scanner.expect(")", "expected ')'")
        return expression
    }

    private mutating func parseComparisonOperator() -> ClaimPathComparisonOperator? {
        // `allCases` lists two-character operators first, so `<=` is not read as `<`.
        ClaimPathComparisonOperator.allCases.first { scanner.consume($0.rawValue) }
    }

    /// What can stand on either side of a comparison, or alone as a test, before its role is known.
    private enum Operand {
        case literal(JSONValue)
        case query(ClaimPathFilterQuery)
        case valueFunction(name: String, ClaimPathValueExpression)
        case logicalFunction(name: String, ClaimPathLogicalExpression)
    }

    private mutating func parseOperand() throws(ClaimPathError) -> Operand {
        switch scanner.current {
        case "@", "$":
            let isRelative = scanner.current == "@"
            scanner.advance()
            return .query(ClaimPathFilterQuery(isRelative: isRelative, query: try parseSegments()))
        case "'", "\"":
            return .literal(.string(try parseStringLiteral()))
        case "-", .some("0"..."9"):
            return .literal(.number(try parseNumber()))
        case .some("a"..."z"):
            let start = scanner.position
            while let scalar = scanner.current, Self.isFunctionNameScalar(scalar) {
                scanner.advance()
            }
            let name = scanner.text(from: start, to: scanner.position)
            if scanner.current == "(" { return try parseFunctionCall(name, at: start) }
            switch name {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "null": return .literal(.null)
            default: throw scanner.error("unexpected '\(name)'", at: start)
            }
        default:
            throw scanner.error("expected '@', '$', a literal or a function, found \(scanner.currentDescription)")
        }
    }

    /// The operand as a test (RFC 9535 `test-expr`): a query's existence, or a function giving LogicalType.
    private func test(_ operand: Operand, at start: Int) throws(ClaimPathError) -> ClaimPathLogicalExpression {
        switch operand {
        case .query(let query):
            return .exists(query)
        case .logicalFunction(_, let expression):
            return expression
        case .literal:
            throw scanner.error("a literal is not a test; compare it with something", at: start)
        case .valueFunction(let name, _):
            throw scanner.error("\(name)() gives a value, not a test; compare it with something", at: start)
        }
    }

    /// The operand as a value (RFC 9535 `comparable`, or a ValueType function argument).
    private func comparable(_ operand: Operand, at start: Int) throws(ClaimPathError) -> ClaimPathValueExpression {
        switch operand {
        case .literal(let value):
            return .literal(value)
        case .query(let query):
            guard query.query.isSingular else {
                throw scanner.error("only a singular query (names and indexes only) gives a value here", at: start)
            }
            return .singularQuery(query)
        case .valueFunction(_, let expression):
            return expression
        case .logicalFunction(let name, _):
            throw scanner.error("\(name)() gives a test result, not a value", at: start)
        }
    }

    // MARK: - Functions

    private mutating func parseFunctionCall(_ name: String, at start: Int) throws(ClaimPathError) -> Operand {
        guard ["length", "count", "value", "match", "search"].contains(name) else {
            throw scanner.error("unknown function '\(name)'", at: start)
        }
        try enterNesting()
        defer { nesting -= 1 }
        scanner.advance()
        scanner.skipBlankSpace()
        let operand: Operand
        switch name {
        case "length":
            operand = .valueFunction(name: name, .length(try parseValueArgument()))
            try finishCall(name, arguments: 1)
        case "count":
            operand = .valueFunction(name: name, .count(try parseQueryArgument(of: name)))
            try finishCall(name, arguments: 1)
        case "value":
            operand = .valueFunction(name: name, .value(try parseQueryArgument(of: name)))
            try finishCall(name, arguments: 1)
        default:
            let subject = try parseValueArgument()
            scanner.skipBlankSpace()
            if scanner.current == ")" { throw scanner.error("\(name)() takes 2 arguments") }
            try scanner.expect(",", "expected ','")
            scanner.skipBlankSpace()
            let regex = try parseRegexArgument(of: name)
            try finishCall(name, arguments: 2)
            let test = ClaimPathRegexTest(subject: subject, pattern: regex, matchesWholeString: name == "match")
            operand = .logicalFunction(name: name, .regularExpression(test))
        }
        return operand
    }

    private mutating func finishCall(_ name: String, arguments: Int) throws(ClaimPathError) {
        scanner.skipBlankSpace()
        if scanner.current == "," {
            throw scanner.error("\(name)() takes \(arguments) argument\(arguments == 1 ? "" : "s")")
        }
        try scanner.expect(")", "expected ')'")
    }

    private mutating func parseValueArgument() throws(ClaimPathError) -> ClaimPathValueExpression {
        let start = scanner.position
        return try comparable(try parseOperand(), at: start)
    }

    private mutating func parseQueryArgument(of name: String) throws(ClaimPathError) -> ClaimPathFilterQuery {
        let start = scanner.position
        guard case .query(let query) = try parseOperand() else {
            throw scanner.error("\(name)() takes a query such as @.roles[*]", at: start)
        }
        return query
    }

    private mutating func parseRegexArgument(of name: String) throws(ClaimPathError) -> ClaimPathPattern {
        let start = scanner.position
        guard scanner.current == "'" || scanner.current == "\"" else {
            throw scanner.error("the pattern of \(name)() must be a string literal")
        }
        let pattern = try parseStringLiteral()
        do {
            return try ClaimPathPattern(pattern)
        } catch {
            throw scanner.error("invalid regular expression (\(error))", at: start)
        }
    }

    // MARK: - Literals

    /// RFC 9535 `string-literal`: single or double quotes, JSON's escapes, and `\'` inside single quotes.
    private mutating func parseStringLiteral() throws(ClaimPathError) -> String {
        let start = scanner.position
        guard let quote = scanner.current else { throw scanner.error("expected a string literal") }
        scanner.advance()
        var text = String.UnicodeScalarView()
        while true {
            guard let scalar = scanner.current else { throw scanner.error("unterminated string literal", at: start) }
            switch scalar {
            case quote:
                scanner.advance()
                return String(text)
            case "\\" where scanner.peek(1) == nil:
                throw scanner.error("unterminated string literal", at: start)
            case "\\":
                text.append(try parseEscape(quote: quote))
            case _ where scalar.value < 0x20:
                throw scanner.error("a control character in a string literal must be escaped")
            default:
                text.append(scalar)
                scanner.advance()
            }
        }
    }

    /// A backslash and what follows it, inside a string literal delimited by `quote`.
    private mutating func parseEscape(quote: Unicode.Scalar) throws(ClaimPathError) -> Unicode.Scalar {
        let escapeStart = scanner.position
        scanner.advance()
        guard let escaped = scanner.current else { throw scanner.error("expected an escaped character") }
        scanner.advance()
        switch escaped {
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "/", "\\", quote: return escaped
        case "u":
            let unit = try parseHexUnit(escapeStart: escapeStart)
            switch unit {
            case 0xD800...0xDBFF:
                // A high surrogate must be followed by an escaped low one; together they are one scalar.
                guard scanner.consume("\\u") else { throw scanner.error("unpaired surrogate", at: escapeStart) }
                let low = try parseHexUnit(escapeStart: escapeStart)
                guard (0xDC00...0xDFFF).contains(low),
                    let scalar = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                else { throw scanner.error("unpaired surrogate", at: escapeStart) }
                return scalar
            default:
                guard let scalar = Unicode.Scalar(unit) else {
                    throw scanner.error("unpaired surrogate", at: escapeStart)
                }
                return scalar
            }
        default:
            throw scanner.error("invalid escape '\\\(escaped)'", at: escapeStart)
        }
    }

    /// Four hex digits after `\u`.
    private mutating func parseHexUnit(escapeStart: Int) throws(ClaimPathError) -> UInt32 {
        var unit: UInt32 = 0
        for _ in 0..<4 {
            guard let scalar = scanner.current, let digit = Self.hexDigit(scalar) else {
                throw scanner.error("expected four hex digits after \\u", at: escapeStart)
            }
            unit = unit << 4 | digit
            scanner.advance()
        }
        return unit
    }

    /// RFC 9535 `number`: JSON's number syntax, plus `-0`. Kept as written, like every `JSONNumber`.
    private mutating func parseNumber() throws(ClaimPathError) -> JSONNumber {
        let start = scanner.position
        _ = scanner.consume("-")
        if scanner.consume("0") {
            if ClaimPathScanner.isDecimalDigit(scanner.current) {
                throw scanner.error("a number has no leading zeros", at: start)
            }
        } else {
            try skipDigits()
        }
        if scanner.consume(".") { try skipDigits() }
        if scanner.consume("e") || scanner.consume("E") {
            _ = scanner.consume("+") || scanner.consume("-")
            try skipDigits()
        }
        return JSONNumber(literal: scanner.text(from: start, to: scanner.position))
    }

    private mutating func skipDigits() throws(ClaimPathError) {
        guard ClaimPathScanner.isDecimalDigit(scanner.current) else { throw scanner.error("expected a digit") }
        while ClaimPathScanner.isDecimalDigit(scanner.current) {
            scanner.advance()
        }
    }

    // MARK: - Character classes

    /// RFC 9535 `name-first`: ASCII letters, `_`, and every non-ASCII scalar.
    private static func isNameFirst(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_" || scalar.value >= 0x80
    }

    private static func isFunctionNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || scalar == "_" || ClaimPathScanner.isDecimalDigit(scalar)
    }

    private static func hexDigit(_ scalar: Unicode.Scalar) -> UInt32? {
        switch scalar {
        case "0"..."9": return scalar.value - 0x30
        case "a"..."f": return scalar.value - 0x61 + 10
        case "A"..."F": return scalar.value - 0x41 + 10
        default: return nil
        }
    }
}
