#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a document is not acceptable JSON, with the byte offset where parsing stopped.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte
        case invalidNumber
        case invalidString
        case invalidUTF8
        case duplicateMember(String)
        case tooDeep
        case trailingContent
    }

    public let kind: Kind
    public let offset: Int

    public init(kind: Kind, offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        switch kind {
        case .unexpectedEnd: "unexpected end of JSON"
        case .unexpectedByte: "unexpected character at byte \(offset)"
        case .invalidNumber: "invalid number at byte \(offset)"
        case .invalidString: "invalid string at byte \(offset)"
        case .invalidUTF8: "invalid UTF-8 at byte \(offset)"
        // The member name comes from the token; it is short-circuited here so it never reaches a log.
        case .duplicateMember: "duplicate member name at byte \(offset)"
        case .tooDeep: "JSON nested too deeply"
        case .trailingContent: "unexpected content after JSON at byte \(offset)"
        }
    }
}

/// A strict RFC 8259 parser for the small documents Portcullis reads: token headers and payloads, JWKS,
/// discovery documents.
///
/// Stricter than Foundation in the ways that matter at a trust boundary:
/// - a member name that appears twice in one object is an error, compared after unescaping (so `"a"` and
///   `"\u0061"` collide), because the backend must never read a different claim than the one we checked;
/// - nesting is bounded, so a hostile document cannot exhaust the stack;
/// - invalid UTF-8 and unpaired surrogate escapes are errors, not replacement characters.
public struct JSONParser: Sendable {
    /// The deepest array/object nesting accepted. The root value is depth 1.
    public var maxDepth: Int

    public init(maxDepth: Int = 32) {
        self.maxDepth = maxDepth
    }

    public func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var reader = Reader(bytes: bytes, maxDepth: maxDepth)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 1)
        reader.skipWhitespace()
        guard reader.isAtEnd else { throw JSONParseError(kind: .trailingContent, offset: reader.offset) }
        return value
    }

    /// Calls `body` with each member of the object `bytes` holds, in document order, without building a
    /// dictionary for it. Duplicate member names are refused as in `parse`. Returns false when the document
    /// is valid JSON but not an object.
    ///
    /// Used for token headers, which are read once and thrown away: for a usual header (a few members)
    /// this allocates nothing.
    public func forEachMember(
        of bytes: UnsafeRawBufferPointer,
        _ body: (String, JSONValue) -> Void
    ) throws(JSONParseError) -> Bool {
        var reader = Reader(bytes: bytes, maxDepth: maxDepth)
        reader.skipWhitespace()
        guard reader.peek() == UInt8(ascii: "{") else {
            _ = try reader.parseValue(depth: 1)
            reader.skipWhitespace()
            guard reader.isAtEnd else { throw JSONParseError(kind: .trailingContent, offset: reader.offset) }
            return false
        }
        reader.offset += 1
        // Names seen so far, for duplicate detection: on the stack for up to 16, then in a set.
        let result: Result<Void, JSONParseError> = withUnsafeTemporaryAllocation(of: String.self, capacity: 16) {
            seen in
            var seenCount = 0
            var overflow: Set<String> = []
            defer { seen.baseAddress!.deinitialize(count: seenCount) }
            return Result { () throws(JSONParseError) in
                try reader.parseMembers(depth: 1) { (name, value, nameOffset) throws(JSONParseError) in
                    let duplicate =
                        seen[0..<seenCount].contains(name) || (!overflow.isEmpty && overflow.contains(name))
                    guard !duplicate else { throw JSONParseError(kind: .duplicateMember(name), offset: nameOffset) }
                    if seenCount < seen.count {
                        seen.baseAddress!.advanced(by: seenCount).initialize(to: name)
                        seenCount += 1
                    } else {
                        overflow.insert(name)
                    }
                    body(name, value)
                }
            }
        }
        try result.get()
        reader.skipWhitespace()
        guard reader.isAtEnd else { throw JSONParseError(kind: .trailingContent, offset: reader.offset) }
        return true
    }

    public func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> =
            bytes.withContiguousStorageIfAvailable { buffer in
                Result { () throws(JSONParseError) in try parse(UnsafeRawBufferPointer(buffer)) }
            }
            ?? Array(bytes).withUnsafeBytes { buffer in
                Result { () throws(JSONParseError) in try parse(buffer) }
            }
        return try result.get()
    }

    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

extension JSONParser {
    fileprivate struct Reader {
        let bytes: UnsafeRawBufferPointer
        let maxDepth: Int
        var offset = 0

        init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        var isAtEnd: Bool { offset >= bytes.count }

        func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

        func error(_ kind: JSONParseError.Kind) -> JSONParseError { JSONParseError(kind: kind, offset: offset) }

        mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                offset += 1
            }
        }

        mutating func expect(_ literal: StaticString) throws(JSONParseError) {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - offset >= count else { throw error(.unexpectedEnd) }
            for index in 0..<count where bytes[offset + index] != literal.utf8Start[index] {
                offset += index
                throw error(.unexpectedByte)
            }
            offset += count
        }

        mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
            guard let byte = peek() else { throw error(.unexpectedEnd) }
            switch byte {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return .number(try parseNumber())
            default:
                throw error(.unexpectedByte)
            }
        }

        mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= maxDepth else { throw error(.tooDeep) }
            offset += 1  // {
            var members = [String: JSONValue](minimumCapacity: countElements())
            try parseMembers(depth: depth) { (name, value, nameOffset) throws(JSONParseError) in
                guard members.updateValue(value, forKey: name) == nil else {
                    throw JSONParseError(kind: .duplicateMember(name), offset: nameOffset)
                }
            }
            return .object(members)
        }

        /// Reads the members of an object whose `{` has been consumed, through its `}`.
        mutating func parseMembers(
            depth: Int,
            _ member: (String, JSONValue, Int) throws(JSONParseError) -> Void
        ) throws(JSONParseError) {
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                offset += 1
                return
            }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw error(isAtEnd ? .unexpectedEnd : .unexpectedByte) }
                let nameOffset = offset
                let name = try parseString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw error(isAtEnd ? .unexpectedEnd : .unexpectedByte) }
                offset += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                try member(name, value, nameOffset)
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "}"):
                    offset += 1
                    return
                case nil: throw error(.unexpectedEnd)
                default: throw error(.unexpectedByte)
                }
            }
        }

        mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= maxDepth else { throw error(.tooDeep) }
            offset += 1  // [
            var elements: [JSONValue] = []
            elements.reserveCapacity(countElements())
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                offset += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "]"):
                    offset += 1
                    return .array(elements)
                case nil: throw error(.unexpectedEnd)
                default: throw error(.unexpectedByte)
                }
            }
        }

        /// How many members or elements the container that starts at `offset` holds, found by a quick scan
        /// that skips nested containers and strings. Sizing each container once keeps parsing to one
        /// allocation per object or array. Only a capacity hint: malformed input is caught by the parser.
        func countElements() -> Int {
            guard let base = bytes.baseAddress else { return 0 }
            var position = offset
            var depth = 0
            var commas = 0
            var sawContent = false
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    sawContent = true
                    // Jump to the closing quote: one escaped by an odd run of backslashes does not count.
                    while position < bytes.count,
                        let found = memchr(base + position, Int32(UInt8(ascii: "\"")), bytes.count - position)
                    {
                        let quote = base.distance(to: UnsafeRawPointer(found))
                        var backslashes = 0
                        while quote - backslashes - 1 >= position, bytes[quote - backslashes - 1] == UInt8(ascii: "\\")
                        {
                            backslashes += 1
                        }
                        position = quote + 1
                        if backslashes % 2 == 0 { break }
                    }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    sawContent = true
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return sawContent ? commas + 1 : 0 }
                    depth -= 1
                case UInt8(ascii: ","):
                    if depth == 0 { commas += 1 }
                case 0x20, 0x09, 0x0A, 0x0D:
                    break
                default:
                    sawContent = true
                }
            }
            return 0
        }

        mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
            let start = offset
            func isDigit(_ byte: UInt8?) -> Bool { byte.map { (0x30...0x39).contains($0) } ?? false }
            if peek() == UInt8(ascii: "-") { offset += 1 }
            // int = zero / ( digit1-9 *DIGIT ): no leading zeros.
            if peek() == UInt8(ascii: "0") {
                offset += 1
            } else if isDigit(peek()) {
                while isDigit(peek()) { offset += 1 }
            } else {
                throw error(.invalidNumber)
            }
            if peek() == UInt8(ascii: ".") {
                offset += 1
                guard isDigit(peek()) else { throw error(.invalidNumber) }
                while isDigit(peek()) { offset += 1 }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                offset += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { offset += 1 }
                guard isDigit(peek()) else { throw error(.invalidNumber) }
                while isDigit(peek()) { offset += 1 }
            }
            let literal = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
            return JSONNumber(literal: literal)
        }

        /// Parses a string starting at its opening quote. Strings without escapes are made straight from
        /// the validated bytes; only escaped ones go through a scalar buffer.
        mutating func parseString() throws(JSONParseError) -> String {
            offset += 1  // opening quote
            let start = offset
            var sawEscape = false
            // First pass: find the closing quote, check control characters and UTF-8.
            while true {
                guard let byte = peek() else { throw error(.unexpectedEnd) }
                if byte == UInt8(ascii: "\"") { break }
                if byte < 0x20 { throw error(.invalidString) }
                if byte == UInt8(ascii: "\\") {
                    sawEscape = true
                    offset += 2
                    continue
                }
                if byte < 0x80 {
                    offset += 1
                } else {
                    offset += try utf8SequenceLength(at: offset)
                }
            }
            let end = offset
            guard end <= bytes.count else { throw error(.unexpectedEnd) }
            offset += 1  // closing quote
            let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            if !sawEscape {
                return String(decoding: raw, as: UTF8.self)
            }
            return try unescape(raw, baseOffset: start)
        }

        /// Validates one UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
        func utf8SequenceLength(at position: Int) throws(JSONParseError) -> Int {
            let lead = bytes[position]
            let length: Int
            var lowerBound: UInt8 = 0x80
            var upperBound: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                lowerBound = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                upperBound = 0x9F
            case 0xF0:
                length = 4
                lowerBound = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                upperBound = 0x8F
            default: throw JSONParseError(kind: .invalidUTF8, offset: position)
            }
            guard position + length <= bytes.count else { throw JSONParseError(kind: .invalidUTF8, offset: position) }
            let second = bytes[position + 1]
            guard second >= lowerBound && second <= upperBound else {
                throw JSONParseError(kind: .invalidUTF8, offset: position)
            }
            for index in 2..<max(2, length) where bytes[position + index] & 0xC0 != 0x80 {
                throw JSONParseError(kind: .invalidUTF8, offset: position)
            }
            return length
        }

        func unescape(_ raw: UnsafeRawBufferPointer, baseOffset: Int) throws(JSONParseError) -> String {
            var scalars = String.UnicodeScalarView()
            var index = 0
            func fail(_ kind: JSONParseError.Kind = .invalidString) -> JSONParseError {
                JSONParseError(kind: kind, offset: baseOffset + index)
            }
            func hex4(at position: Int) throws(JSONParseError) -> UInt32 {
                guard position + 4 <= raw.count else { throw fail() }
                var value: UInt32 = 0
                for byte in raw[position..<position + 4] {
                    let digit: UInt8
                    switch byte {
                    case 0x30...0x39: digit = byte - 0x30
                    case 0x41...0x46: digit = byte - 0x41 + 10
                    case 0x61...0x66: digit = byte - 0x61 + 10
                    default: throw fail()
                    }
                    value = value << 4 | UInt32(digit)
                }
                return value
            }
            while index < raw.count {
                let byte = raw[index]
                if byte != UInt8(ascii: "\\") {
                    // Already validated: copy one whole UTF-8 sequence.
                    let length = byte < 0x80 ? 1 : (byte >= 0xF0 ? 4 : (byte >= 0xE0 ? 3 : 2))
                    let sequence = UnsafeRawBufferPointer(rebasing: raw[index..<index + length])
                    scalars.append(contentsOf: String(decoding: sequence, as: UTF8.self).unicodeScalars)
                    index += length
                    continue
                }
                guard index + 1 < raw.count else { throw fail() }
                let escaped = raw[index + 1]
                index += 2
                switch escaped {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4(at: index)
                    index += 4
                    if (0xD800...0xDBFF).contains(code) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\"),
                            raw[index + 1] == UInt8(ascii: "u")
                        else { throw fail() }
                        let low = try hex4(at: index + 2)
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail() }
                        index += 6
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw fail()
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail() }
                    scalars.append(scalar)
                default:
                    throw fail()
                }
            }
            return String(scalars)
        }
    }
}
