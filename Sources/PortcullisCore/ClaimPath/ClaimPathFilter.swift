/// A compiled JSONPath filter expression (RFC 9535 §2.3.5), evaluated once per candidate node.
indirect enum ClaimPathLogicalExpression: Sendable {
    case or([ClaimPathLogicalExpression])
    case and([ClaimPathLogicalExpression])
    case not(ClaimPathLogicalExpression)
    case comparison(ClaimPathValueExpression, ClaimPathComparisonOperator, ClaimPathValueExpression)
    /// An existence test: the query selects at least one node.
    case exists(ClaimPathFilterQuery)
    /// `match()` or `search()`.
    case regularExpression(ClaimPathRegexTest)

    func isSatisfied(current: JSONValue, root: JSONValue) -> Bool {
        switch self {
        case .or(let alternatives):
            return alternatives.contains { $0.isSatisfied(current: current, root: root) }
        case .and(let conditions):
            return conditions.allSatisfy { $0.isSatisfied(current: current, root: root) }
        case .not(let condition):
            return !condition.isSatisfied(current: current, root: root)
        case .comparison(let left, let comparison, let right):
            return comparison.holds(
                between: left.evaluate(current: current, root: root),
                and: right.evaluate(current: current, root: root))
        case .exists(let query):
            return query.query.selectsAnyNode(from: query.start(current: current, root: root), root: root)
        case .regularExpression(let test):
            return test.isSatisfied(current: current, root: root)
        }
    }
}

/// A query inside a filter: relative to the candidate node (`@`) or to the whole document (`$`).
struct ClaimPathFilterQuery: Sendable {
    var isRelative: Bool
    var query: ClaimPathQuery

    func start(current: JSONValue, root: JSONValue) -> JSONValue {
        isRelative ? current : root
    }
}

/// Something with RFC 9535's ValueType: a JSON value, or Nothing (`.none`) when a query selects no node.
indirect enum ClaimPathValueExpression: Sendable {
    case literal(JSONValue)
    /// A singular query: its one node, or Nothing.
    case singularQuery(ClaimPathFilterQuery)
    /// `length(value)`: characters (Unicode scalars) of a string, elements of an array, members of an object.
    case length(ClaimPathValueExpression)
    /// `count(query)`: how many nodes the query selects.
    case count(ClaimPathFilterQuery)
    /// `value(query)`: the node when the query selects exactly one.
    case value(ClaimPathFilterQuery)

    func evaluate(current: JSONValue, root: JSONValue) -> JSONValue? {
        switch self {
        case .literal(let value):
            return value
        case .singularQuery(let query):
            return Self.nodes(of: query, current: current, root: root, upTo: 1).first
        case .length(let argument):
            switch argument.evaluate(current: current, root: root) {
            case .string(let string): return Self.number(string.unicodeScalars.count)
            case .array(let elements): return Self.number(elements.count)
            case .object(let members): return Self.number(members.count)
            case .null, .bool, .number, .none: return .none
            }
        case .count(let query):
            var count = 0
            query.query.forEachNode(from: query.start(current: current, root: root), root: root) { _ in
                count += 1
                return true
            }
            return Self.number(count)
        case .value(let query):
            // Two nodes are enough to know there is not exactly one.
            let nodes = Self.nodes(of: query, current: current, root: root, upTo: 2)
            guard nodes.count == 1 else { return .none }
            return nodes[0]
        }
    }

    private static func nodes(
        of query: ClaimPathFilterQuery, current: JSONValue, root: JSONValue, upTo limit: Int
    ) -> [JSONValue] {
        var nodes: [JSONValue] = []
        query.query.forEachNode(from: query.start(current: current, root: root), root: root) { node in
            nodes.append(node)
            return nodes.count < limit
        }
        return nodes
    }

    private static func number(_ value: Int) -> JSONValue {
        .number(JSONNumber(literal: String(value)))
    }
}

/// RFC 9535 §2.3.5.2.2 comparisons, where Nothing equals only Nothing and only numbers and strings are ordered.
enum ClaimPathComparisonOperator: String, Sendable, CaseIterable {
    case equal = "=="
    case notEqual = "!="
    case lessOrEqual = "<="
    case greaterOrEqual = ">="
    case less = "<"
    case greater = ">"

    func holds(between left: JSONValue?, and right: JSONValue?) -> Bool {
        switch self {
        case .equal: return Self.areEqual(left, right)
        case .notEqual: return !Self.areEqual(left, right)
        case .less: return Self.isLess(left, right)
        case .lessOrEqual: return Self.isLess(left, right) || Self.areEqual(left, right)
        case .greater: return Self.isLess(right, left)
        case .greaterOrEqual: return Self.isLess(right, left) || Self.areEqual(left, right)
        }
    }

    /// Numbers compare by value (`1 == 1.0`), strings by Unicode scalars, arrays and objects deeply.
    static func areEqual(_ left: JSONValue?, _ right: JSONValue?) -> Bool {
        switch (left, right) {
        case (.none, .none): return true
        case (.none, _), (_, .none): return false
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a.doubleValue == b.doubleValue
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { areEqual($0, $1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count && a.allSatisfy { key, value in areEqual(value, b[key]) }
        default: return false
        }
    }

    static func isLess(_ left: JSONValue?, _ right: JSONValue?) -> Bool {
        switch (left, right) {
        case (.number(let a), .number(let b)):
            return a.doubleValue < b.doubleValue
        case (.string(let a), .string(let b)):
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        default:
            return false
        }
    }
}

/// `match(value, 'regex')` (the whole string) or `search(value, 'regex')` (any substring), with the regular
/// expression compiled when the path is. A value that is not a string never matches.
struct ClaimPathRegexTest: Sendable {
    var subject: ClaimPathValueExpression
    var pattern: ClaimPathPattern
    var matchesWholeString: Bool

    func isSatisfied(current: JSONValue, root: JSONValue) -> Bool {
        guard case .string(let string) = subject.evaluate(current: current, root: root) else { return false }
        return matchesWholeString ? pattern.matchesWhole(string) : pattern.matchesPart(of: string)
    }
}

/// A compiled regular expression that can be shared between requests.
///
/// `Regex<AnyRegexOutput>` is not `Sendable` because its match output holds `Any`; the regex itself is
/// immutable except for the program it lowers and caches (atomically) on first use. `init` runs that first use,
/// so afterwards nothing in it changes and sharing it is safe; match outputs never leave this type.
struct ClaimPathPattern: @unchecked Sendable {
    private let regex: Regex<AnyRegexOutput>

    /// Compiles `pattern`, matching by Unicode scalars as I-Regexp (RFC 9485) does.
    init(_ pattern: String) throws {
        regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
        _ = try? regex.firstMatch(in: "")
    }

    // Matching only throws for custom regex components, which a pattern string cannot contain.
    func matchesWhole(_ string: String) -> Bool {
        (try? regex.wholeMatch(in: string)) != nil
    }

    func matchesPart(of string: String) -> Bool {
        (try? regex.firstMatch(in: string)) != nil
    }
}
