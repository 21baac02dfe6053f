/// A compiled path: segments applied in turn, each to every node the previous ones selected (RFC 9535 §2.1.2).
/// Both grammars compile to this, so there is one evaluator.
///
/// A missing `JSONValue?` is spelled `.none` throughout, never `nil`: `JSONValue` is `ExpressibleByNilLiteral`, so
/// a bare `nil` where a `JSONValue` fits (a ternary branch, a pattern) would silently become `.null`.
struct ClaimPathQuery: Sendable {
    var segments: [ClaimPathSegment]

    /// Whether the query selects at most one node: only names and indexes, one per segment (RFC 9535 §2.3.5.1).
    var isSingular: Bool {
        segments.allSatisfy { segment in
            guard segment.selectors.count == 1 else { return false }
            switch segment.selectors[0] {
            case .member, .index: return true
            case .wildcard, .filter, .stringMatch: return false
            }
        }
    }

    /// Calls `visit` with every selected node in document order until it returns false.
    ///
    /// Depth-first, so a single-valued path allocates nothing and `firstValue` stops at the first match; the
    /// order is the same as RFC 9535's segment-by-segment nodelists. Returns false if `visit` stopped the walk.
    @discardableResult
    func forEachNode(from start: JSONValue, root: JSONValue, _ visit: (JSONValue) -> Bool) -> Bool {
        walk(start, segmentIndex: 0, root: root, visit)
    }

    /// Whether the query selects anything at all.
    func selectsAnyNode(from start: JSONValue, root: JSONValue) -> Bool {
        !forEachNode(from: start, root: root) { _ in false }
    }

    private func walk(
        _ node: JSONValue, segmentIndex: Int, root: JSONValue, _ visit: (JSONValue) -> Bool
    ) -> Bool {
        guard segmentIndex < segments.count else { return visit(node) }
        let next = segmentIndex + 1
        for selector in segments[segmentIndex].selectors {
            switch selector {
            case .member(let name):
                if case .object(let members) = node, let child = members[name],
                    !walk(child, segmentIndex: next, root: root, visit)
                {
                    return false
                }
            case .index(let index):
                if case .array(let elements) = node, let child = Self.element(at: index, of: elements),
                    !walk(child, segmentIndex: next, root: root, visit)
                {
                    return false
                }
            case .wildcard:
                for child in Self.children(of: node) {
                    if !walk(child, segmentIndex: next, root: root, visit) { return false }
                }
            case .filter(let condition):
                for child in Self.children(of: node) where condition.isSatisfied(current: child, root: root) {
                    if !walk(child, segmentIndex: next, root: root, visit) { return false }
                }
            case .stringMatch(let match):
                // PostgREST's filter looks only at the string elements of an array.
                guard case .array(let elements) = node else { break }
                for element in elements {
                    guard case .string(let string) = element, match.matches(string) else { continue }
                    if !walk(element, segmentIndex: next, root: root, visit) { return false }
                }
            }
        }
        return true
    }

    /// RFC 9535 §2.3.3.2: a negative index counts from the end; out of range selects nothing.
    private static func element(at index: Int, of elements: [JSONValue]) -> JSONValue? {
        // |index| ≤ 2^53 − 1 (checked at compile time), so the sum cannot overflow.
        let resolved = index < 0 ? elements.count + index : index
        guard elements.indices.contains(resolved) else { return .none }
        return elements[resolved]
    }

    /// The children a wildcard or filter visits. Object members have no order in `JSONValue`, so they are
    /// visited in code-point order of their names, which keeps results deterministic.
    private static func children(of node: JSONValue) -> [JSONValue] {
        switch node {
        case .array(let elements):
            return elements
        case .object(let members):
            return members.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
                .map(\.value)
        case .null, .bool, .number, .string:
            return []
        }
    }
}

/// One segment: the selectors of a `[...]` (or the one after `.`); their results are concatenated.
struct ClaimPathSegment: Sendable {
    var selectors: [ClaimPathSelector]

    init(_ selectors: ClaimPathSelector...) {
        self.selectors = selectors
    }

    init(selectors: [ClaimPathSelector]) {
        self.selectors = selectors
    }
}

enum ClaimPathSelector: Sendable {
    /// `.name`, `['name']`, or PostgREST's `.key` / `."key"`.
    case member(String)
    /// `[N]`; negative only in JSONPath.
    case index(Int)
    /// `*`: every element, or every member value.
    case wildcard
    /// JSONPath's `[?expression]`.
    case filter(ClaimPathLogicalExpression)
    /// PostgREST's `[?(@ OP "value")]`.
    case stringMatch(ClaimPathStringMatch)
}

/// PostgREST's filter: string elements of an array compared with one string. Comparisons are by Unicode scalars,
/// like PostgREST's `Text` functions, not by Swift's canonical equivalence.
struct ClaimPathStringMatch: Sendable {
    enum Operator: String, Sendable, CaseIterable {
        case equals = "=="
        case notEquals = "!="
        case startsWith = "^=="
        case endsWith = "==^"
        case contains = "*=="
    }

    var operation: Operator
    var operand: String

    func matches(_ string: String) -> Bool {
        let scalars = string.unicodeScalars
        let operandScalars = operand.unicodeScalars
        switch operation {
        case .equals:
            return scalars.elementsEqual(operandScalars)
        case .notEquals:
            return !scalars.elementsEqual(operandScalars)
        case .startsWith:
            return scalars.starts(with: operandScalars)
        case .endsWith:
            return scalars.reversed().starts(with: operandScalars.reversed())
        case .contains:
            guard !operandScalars.isEmpty else { return true }
            var start = scalars.startIndex
            while start != scalars.endIndex {
                if scalars[start...].starts(with: operandScalars) { return true }
                start = scalars.index(after: start)
            }
            return false
        }
    }
}
