/// A cursor over the Unicode scalars of a claim path, shared by both grammars' parsers.
///
/// Positions are offsets into the scalars, which is what `ClaimPathError.position` reports.
struct ClaimPathScanner {
    /// The largest array index either grammar accepts: 2^53 − 1, RFC 9535's I-JSON bound. Anything larger is a
    /// compile error, so evaluation never sees an index that could overflow.
    static let maximumIndex = (1 << 53) - 1

    let source: String
    private let scalars: [Unicode.Scalar]
    private(set) var position = 0

    init(_ source: String) {
        self.source = source
        self.scalars = Array(source.unicodeScalars)
    }

    var isAtEnd: Bool { position >= scalars.count }

    var current: Unicode.Scalar? { peek(0) }

    func peek(_ offset: Int) -> Unicode.Scalar? {
        let index = position + offset
        return index < scalars.count ? scalars[index] : nil
    }

    /// The current scalar quoted for an error message, or "end of path".
    var currentDescription: String {
        guard let current else { return "end of path" }
        return "'\(current)'"
    }

    mutating func advance(by count: Int = 1) {
        position = min(position + count, scalars.count)
    }

    /// Goes back to an earlier position, for the few places that must look past blank space before deciding.
    mutating func rewind(to earlier: Int) {
        position = earlier
    }

    /// Consumes `literal` if the input continues with it.
    mutating func consume(_ literal: String) -> Bool {
        var offset = 0
        for scalar in literal.unicodeScalars {
            guard peek(offset) == scalar else { return false }
            offset += 1
        }
        advance(by: offset)
        return true
    }

    mutating func expect(_ literal: String, _ message: String) throws(ClaimPathError) {
        guard consume(literal) else { throw error(message) }
    }

    /// Skips RFC 9535 blank space (space, tab, line feed, carriage return); returns whether there was any.
    @discardableResult
    mutating func skipBlankSpace() -> Bool {
        let start = position
        while let scalar = current, scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" {
            advance()
        }
        return position > start
    }

    /// Reads a run of ASCII digits as an array index magnitude; nil if there is no digit here. An index out of
    /// range is reported at `indexStart` (where a sign began), or at the digits.
    mutating func scanIndexMagnitude(indexStart: Int? = nil) throws(ClaimPathError) -> Int? {
        let start = position
        var value = 0
        var isTooLarge = false
        while let digit = current.flatMap(Self.decimalDigit) {
            // Stop accumulating once past the bound, so a 40-digit index cannot overflow `Int`.
            if !isTooLarge {
                value = value * 10 + digit
                isTooLarge = value > Self.maximumIndex
            }
            advance()
        }
        guard position > start else { return nil }
        guard !isTooLarge else { throw error("array index out of range", at: indexStart ?? start) }
        return value
    }

    func error(_ message: String, at errorPosition: Int? = nil) -> ClaimPathError {
        ClaimPathError(message: message, position: errorPosition ?? position, source: source)
    }

    /// The source between two positions, for literals kept as written.
    func text(from start: Int, to end: Int) -> String {
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars[start..<end])
        return String(text)
    }

    static func decimalDigit(_ scalar: Unicode.Scalar) -> Int? {
        ("0"..."9").contains(scalar) ? Int(scalar.value - 48) : nil
    }

    static func isDecimalDigit(_ scalar: Unicode.Scalar?) -> Bool {
        scalar.flatMap(decimalDigit) != nil
    }
}
