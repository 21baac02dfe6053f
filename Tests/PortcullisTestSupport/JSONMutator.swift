public import PortcullisCore

/// Random edits of a JSON document, aimed at the decoder that reads it: values of the wrong type, at the edges
/// of their ranges, or with the characters its formats treat specially; members removed, duplicated, and
/// added under the names that decoder knows. The vocabulary is the caller's (configuration options, JWK
/// members), so edits land where they matter instead of on names nothing reads.
///
/// ```swift
/// let mutator = JSONMutator(keys: ["kty", "n", "e"], strings: ["", "AQAB"], numbers: ["0", "-1"])
/// var generator = SplitMix64(seed: 1)
/// var document = original
/// mutator.mutate(&document, using: &generator)
/// ```
public struct JSONMutator: Sendable {
    /// Member names for added and renamed members.
    public let keys: [String]
    /// Strings that replace string values: the edge cases of the formats the decoder parses.
    public let strings: [String]
    /// Number literals that replace numbers.
    public let numbers: [String]
    /// Characters inserted into strings.
    public let specials: [Character]

    public init(keys: [String], strings: [String], numbers: [String], specials: [Character]) {
        self.keys = keys
        self.strings = strings
        self.numbers = numbers
        self.specials = specials
    }

    /// Edits one node, chosen by walking down from the root.
    public func mutate(_ value: inout JSONValue, using generator: inout SplitMix64) {
        switch value {
        case .object(var members) where !members.isEmpty && Int.random(in: 0..<4, using: &generator) > 0:
            let key = members.keys.sorted().randomElement(using: &generator)!
            switch Int.random(in: 0..<8, using: &generator) {
            case 0: members[key] = nil
            case 1: members[keys.randomElement(using: &generator)!] = members[key]
            case 2: members[keys.randomElement(using: &generator)!] = randomValue(using: &generator)
            default: mutate(&members[key]!, using: &generator)
            }
            value = .object(members)
        case .array(var elements) where !elements.isEmpty && Int.random(in: 0..<4, using: &generator) > 0:
            let index = Int.random(in: 0..<elements.count, using: &generator)
            switch Int.random(in: 0..<5, using: &generator) {
            case 0: elements.remove(at: index)
            case 1: elements.append(elements[index])
            default: mutate(&elements[index], using: &generator)
            }
            value = .array(elements)
        case .string(let text):
            switch Int.random(in: 0..<5, using: &generator) {
            case 0, 1: value = .string(strings.randomElement(using: &generator)!)
            case 2, 3: value = .string(edited(text, using: &generator))
            default: value = randomValue(using: &generator)
            }
        case .number:
            value =
                Int.random(in: 0..<4, using: &generator) > 0
                ? .number(JSONNumber(literal: numbers.randomElement(using: &generator)!))
                : randomValue(using: &generator)
        default:
            value = randomValue(using: &generator)
        }
    }

    /// Any JSON value, drawn from the vocabulary; containers nest at most two deep.
    public func randomValue(using generator: inout SplitMix64, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth < 2 ? 8 : 5), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .number(JSONNumber(literal: numbers.randomElement(using: &generator)!))
        case 3, 4: return .string(strings.randomElement(using: &generator)!)
        case 5:
            return .array(
                (0..<Int.random(in: 0...3, using: &generator)).map { _ in
                    randomValue(using: &generator, depth: depth + 1)
                })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...3, using: &generator) {
                members[keys.randomElement(using: &generator)!] = randomValue(using: &generator, depth: depth + 1)
            }
            return .object(members)
        }
    }

    /// `text` with one character removed, or one of `specials` inserted.
    func edited(_ text: String, using generator: inout SplitMix64) -> String {
        var characters = Array(text)
        if !characters.isEmpty && Bool.random(using: &generator) {
            characters.remove(at: Int.random(in: 0..<characters.count, using: &generator))
        } else {
            characters.insert(
                specials.randomElement(using: &generator)!, at: Int.random(in: 0...characters.count, using: &generator))
        }
        return String(characters)
    }
}
