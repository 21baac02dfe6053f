/// A parsed JSON value. Objects are unordered; numbers keep their literal text.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

/// A JSON number as written, so integers never turn into `1.0` when forwarded.
public struct JSONNumber: Sendable, Hashable {
    /// The number exactly as it appeared in the document (already checked against RFC 8259's grammar).
    public let literal: String

    public init(literal: String) {
        self.literal = literal
    }

    /// The number as a `Double`; `nan` only if `literal` was not produced by the parser.
    public var doubleValue: Double {
        // Fast path for the common case, plain integers such as NumericDates, which are exact in a Double
        // up to 15 digits; everything else goes through the full conversion.
        var value: Int64 = 0
        var digits = 0
        for byte in literal.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 15 else {
                return Double(literal) ?? .nan
            }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? Double(value) : (Double(literal) ?? .nan)
    }
}

extension JSONValue {
    /// The member `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }

    /// The string, when this is one.
    public var stringValue: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    /// The members, when this is an object.
    public var objectValue: [String: JSONValue]? {
        guard case .object(let members) = self else { return nil }
        return members
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }
}

// Deliberately not ExpressibleByNilLiteral: with it, `nil` beside a `JSONValue?` can silently mean `.null`
// instead of "no value".
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(literal: String(value))) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
