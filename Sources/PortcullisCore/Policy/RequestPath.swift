/// Why a request path (or a rule's path pattern) was refused. The proxy answers 400 with it.
///
/// Messages never repeat the path: they go to clients and logs, and the path is attacker-chosen text.
public struct RequestPathRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable, snake_case reason codes.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// Empty, or not starting with `/` (absolute-form and asterisk-form are the caller's to handle).
        case notOriginForm = "not_origin_form"
        /// A `%` not followed by two hex digits.
        case invalidPercentEncoding = "invalid_percent_encoding"
        /// A control character, raw or percent-encoded (`%00`–`%1F`, `%7F`).
        case controlCharacter = "control_character"
        /// A raw `\`: some servers read it as a separator, others as data.
        case backslash
        /// A raw `#` or `?`: the fragment never reaches a server, and the query was meant to be split off already.
        case invalidCharacter = "invalid_character"
        /// More `..` segments than there are segments to remove (`/../x`).
        case aboveRoot = "above_root"
        /// A segment that is `..` to some servers but not to RFC 3986: `..` beside an encoded `/` or `\`
        /// (`/a/..%2Fadmin`, a traversal for a backend that decodes `%2F` or `%5C` into a separator), or `..`
        /// with `;` parameters (`/public/..;/admin`, which Tomcat and Spring read as `/admin`).
        case ambiguousDotSegment = "ambiguous_dot_segment"
        /// An overlong UTF-8 escape (`%C0%AE` is a `.` to a lax decoder, `%C0%AF` a `/`).
        case overlongEncoding = "overlong_encoding"
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(reason.rawValue): \(message)" }
}

/// A request path normalized for rule matching: RFC 3986 §6.2.2 plus the proxy's safety rules.
///
/// - Escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, every other escape keeps its
///   encoding with uppercase hex: `%7euser` → `~user`, `%3a` → `%3A`. An encoded `/` (`%2F`) or `\` (`%5C`)
///   is never decoded, so it can never become a separator.
/// - Dot-segments are removed after that decoding, so `%2e%2e` is `..`: `/public/%2e%2e/admin` → `/admin`.
///   A `..` with nothing left to remove is refused rather than dropped: no legitimate client sends one.
/// - Repeated slashes are folded (`/a//b` → `/a/b`) before dot-segments are removed, as nginx's
///   `merge_slashes` does. A backend that keeps empty segments would resolve `/a//../b` to `/a/b` instead, so
///   the proxy should forward `normalized` rather than the raw path: then the backend sees exactly the path
///   the rules saw.
/// - A trailing slash is kept (`/a/./b/` → `/a/b/`), and a path that ends in a dot-segment gets one
///   (`/a/b/..` → `/a/`), as RFC 3986 §5.2.4 does.
/// - Raw characters that RFC 3986 does not allow in a path (space, `"`, `<`, `>`, `[`, `]`, `^`, `` ` ``,
///   `{`, `|`, `}`, and any non-ASCII byte) are percent-encoded, so `/café` and `/caf%C3%A9` are the same
///   path, as they are to the backend. Raw control characters, `\`, `#` and `?` are refused.
/// - Spellings that are `..` to some servers and not to RFC 3986 are refused: `..` beside `%2F` or `%5C`
///   in one segment, `..;params` (Tomcat), and overlong UTF-8 escapes (`%C0%AE`).
///
/// The result is always ASCII.
public struct RequestPath: Sendable, Hashable, CustomStringConvertible {
    /// The normalized path, used for rule matching (and best forwarded as is).
    public let normalized: String

    /// Normalizes `raw`, the path of an origin-form request-target (everything before the `?`).
    public init(_ raw: Substring) throws(RequestPathRefusal) {
        // Most paths are normal already (`/rest/v1/items`): they are taken as they are, without the
        // normalizer's buffers. `normalize` would return the same bytes (tested on generated paths).
        normalized = PathNormalizer.isAlreadyNormal(raw.utf8) ? String(raw) : try Self.normalize(raw)
    }

    /// Always through the normalizer: `init(_:)` minus its shortcut, for the test that checks the shortcut.
    init(normalizing raw: Substring) throws(RequestPathRefusal) {
        normalized = try Self.normalize(raw)
    }

    private static func normalize(_ raw: Substring) throws(RequestPathRefusal) -> String {
        var normalizer = PathNormalizer()
        return try normalizer.normalize(Array(raw.utf8))
    }

    /// Normalizes `raw`, the path of an origin-form request-target (everything before the `?`).
    public init(_ raw: String) throws(RequestPathRefusal) {
        try self.init(raw[...])
    }

    public var description: String { normalized }

    /// Splits an origin-form request-target at its first `?`: the raw path, and the raw query (nil when there
    /// is no `?`; empty when the `?` ends the target).
    public static func splitTarget(_ target: Substring) -> (path: Substring, query: Substring?) {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target, nil) }
        return (target[..<mark], target[target.utf8.index(after: mark)...])
    }
}

/// The normalization itself: one pass over the bytes, building the output segment by segment so that a `..`
/// only has to cut the output back to where the previous segment started.
struct PathNormalizer {
    /// The kept segments, each with its leading `/`; no trailing slash.
    private var output: [UInt8] = []
    /// Where each kept segment starts in `output`, for `..`.
    private var segmentStarts: [Int] = []
    /// The segment being read, with escapes already normalized.
    private var segment: [UInt8] = []
    /// Whether the last segment read was empty or a dot-segment, so the path ends with `/`.
    private var endsWithSlash = false

    mutating func normalize(_ bytes: [UInt8]) throws(RequestPathRefusal) -> String {
        guard bytes.first == PolicyText.slash else {
            throw RequestPathRefusal(.notOriginForm, "The request path must start with '/'")
        }
        output.reserveCapacity(bytes.count + 8)
        // The byte before, when it came from an escape: what overlong detection needs to see.
        var previousEscaped: UInt8?
        var index = 1
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case PolicyText.slash:
                try finishSegment()
                previousEscaped = nil
                index += 1
            case PolicyText.percent:
                guard index + 2 < bytes.count, let high = PolicyText.hexValue(bytes[index + 1]),
                    let low = PolicyText.hexValue(bytes[index + 2])
                else {
                    throw RequestPathRefusal(.invalidPercentEncoding, "The request path has an invalid percent-escape")
                }
                let value = high << 4 | low
                try appendEscaped(value, after: previousEscaped)
                previousEscaped = value
                index += 3
            default:
                try appendRaw(byte)
                previousEscaped = nil
                index += 1
            }
        }
        try finishSegment()
        if output.isEmpty { return "/" }
        if endsWithSlash { output.append(PolicyText.slash) }
        return String(decoding: output, as: UTF8.self)
    }

    private mutating func appendEscaped(_ value: UInt8, after previous: UInt8?) throws(RequestPathRefusal) {
        if value == 0 {
            throw RequestPathRefusal(.controlCharacter, "The request path has an encoded NUL")
        }
        if value < 0x20 || value == 0x7F {
            throw RequestPathRefusal(.controlCharacter, "The request path has an encoded control character")
        }
        // C0 and C1 only ever start an overlong two-byte sequence; E0 80–9F and F0 80–8F are overlong three- and
        // four-byte ones. Kept encoded they are harmless here, but a lax UTF-8 decoder behind the proxy reads
        // %C0%AE as '.' and %C0%AF as '/'.
        if value == 0xC0 || value == 0xC1 || (previous == 0xE0 && value < 0xA0 && value >= 0x80)
            || (previous == 0xF0 && value < 0x90 && value >= 0x80)
        {
            throw RequestPathRefusal(.overlongEncoding, "The request path has an overlong UTF-8 escape")
        }
        if Self.isUnreserved(value) {
            segment.append(value)
        } else {
            appendEncoded(value)
        }
    }

    private mutating func appendRaw(_ byte: UInt8) throws(RequestPathRefusal) {
        switch byte {
        case 0x00..<0x20, 0x7F:
            throw RequestPathRefusal(.controlCharacter, "The request path has a control character")
        case UInt8(ascii: "\\"):
            throw RequestPathRefusal(.backslash, "The request path has a backslash")
        case UInt8(ascii: "#"), UInt8(ascii: "?"):
            throw RequestPathRefusal(.invalidCharacter, "The request path has a '#' or '?'")
        case _ where Self.isAllowedRaw(byte):
            segment.append(byte)
        default:
            appendEncoded(byte)
        }
    }

    private mutating func appendEncoded(_ value: UInt8) {
        segment.append(PolicyText.percent)
        segment.append(PolicyText.upperHexDigit(value >> 4))
        segment.append(PolicyText.upperHexDigit(value & 0x0F))
    }

    private mutating func finishSegment() throws(RequestPathRefusal) {
        defer {
            segment.removeAll(keepingCapacity: true)
        }
        let dot = UInt8(ascii: ".")
        if segment.isEmpty || segment == [dot] {
            endsWithSlash = true
            return
        }
        if segment == [dot, dot] {
            guard let start = segmentStarts.popLast() else {
                throw RequestPathRefusal(.aboveRoot, "The request path climbs above the root")
            }
            output.removeSubrange(start...)
            endsWithSlash = true
            return
        }
        if hasHiddenDotDot(segment) {
            throw RequestPathRefusal(
                .ambiguousDotSegment, "The request path has '..' beside an encoded separator or a ';' parameter")
        }
        segmentStarts.append(output.count)
        output.append(PolicyText.slash)
        output.append(contentsOf: segment)
        endsWithSlash = false
    }

    /// Whether a segment, split at its `%2F` and `%5C` escapes, has a part that is `..` or `..;…`. Escapes are
    /// normalized to uppercase by now, and every `%` in a segment starts one.
    private func hasHiddenDotDot(_ segment: [UInt8]) -> Bool {
        let dot = UInt8(ascii: ".")
        var partStart = 0
        var index = 0
        while index <= segment.count {
            var isSeparator = false
            if index < segment.count, segment[index] == PolicyText.percent, index + 2 < segment.count {
                let escape = (segment[index + 1], segment[index + 2])
                isSeparator =
                    escape == (UInt8(ascii: "2"), UInt8(ascii: "F")) || escape == (UInt8(ascii: "5"), UInt8(ascii: "C"))
            }
            if index == segment.count || isSeparator {
                let part = segment[partStart..<index]
                if part.starts(with: [dot, dot]), part.count == 2 || part.dropFirst(2).first == UInt8(ascii: ";") {
                    return true
                }
                partStart = index + 3
                index += 3
            } else {
                index += segment[index] == PolicyText.percent ? 3 : 1
            }
        }
        return false
    }

    /// Whether `normalize` would return `raw` unchanged, decided in one pass without allocating: a `/` first,
    /// then only bytes RFC 3986 allows raw in a path (no `%`, so nothing to decode or re-encode), no empty
    /// segment inside the path (`//`), and no segment starting with `.` (so no dot-segment, and no `..;`).
    /// A trailing `/` is kept by `normalize` too.
    static func isAlreadyNormal(_ raw: Substring.UTF8View) -> Bool {
        guard raw.first == PolicyText.slash else { return false }
        var previous = PolicyText.slash
        for byte in raw.dropFirst() {
            if byte == PolicyText.slash || byte == UInt8(ascii: ".") {
                if previous == PolicyText.slash { return false }
            } else if !isAllowedRaw(byte) {
                return false
            }
            previous = byte
        }
        return true
    }

    /// RFC 3986 §2.3.
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// RFC 3986 §3.3 `pchar` minus escapes: unreserved, sub-delims, `:` and `@`.
    private static func isAllowedRaw(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"):
            true
        default:
            isUnreserved(byte)
        }
    }
}
