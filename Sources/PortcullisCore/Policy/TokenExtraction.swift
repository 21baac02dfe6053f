/// Where a request may carry its token.
public enum TokenSource: Sendable, Hashable, CustomStringConvertible {
    /// A header, named case-insensitively. With a scheme (`Bearer`), the value must be the scheme in any letter
    /// case, then spaces, then the token; without one, the whole value (spaces around it trimmed) is the token.
    case header(name: String, scheme: String?)
    /// A query parameter, named exactly (after percent-decoding the name); its value is percent-decoded, with
    /// `+` read as a space as in application/x-www-form-urlencoded.
    case query(name: String)
    /// A cookie from the `Cookie` header(s), named exactly. Values are taken as sent (RFC 6265 defines no
    /// decoding), without the double quotes that may surround them.
    case cookie(name: String)

    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    public static let authorizationBearer = TokenSource.header(name: "Authorization", scheme: "Bearer")

    /// "the Authorization header", "the access_token query parameter", "the session cookie": for messages.
    public var description: String {
        switch self {
        case .header(let name, _): "the \(name) header"
        case .query(let name): "the \(name) query parameter"
        case .cookie(let name): "the \(name) cookie"
        }
    }
}

/// What a request carries for authentication.
public enum TokenExtraction: Sendable, Hashable {
    /// No token in any source.
    case none
    /// Exactly one token, and the first source (in configured order) that carried it.
    case token(Substring, source: TokenSource)
    /// The credentials are ambiguous or malformed (RFC 6750 §3.1 `invalid_request`, answered with 400). The
    /// reason names sources, never token text.
    case invalidRequest(String)
}

/// Finds the token in a request, from the configured sources.
///
/// RFC 6750 §2: a client must not use more than one method to send its token. Every source is read, so a
/// second token is always noticed:
/// - Different tokens, in one source or across sources, are refused: the proxy and the backend could each
///   pick a different one.
/// - A header source whose header appears more than once is refused even when the values agree: two
///   `Authorization` headers are exactly what RFC 6750 forbids, and an intermediary that joins them with a
///   comma makes a third value out of two.
/// - The same token in two different sources (header and cookie, say) is accepted, from the first source in
///   configured order: a browser app that sends its session cookie along with the header it built from it
///   means one credential. Likewise a query parameter or a cookie repeated with the same value (browsers send
///   the same cookie twice when it is set for two paths or domains).
/// - A header with the scheme but no token (`Authorization: Bearer`), an empty header without a scheme, an
///   empty or undecodable query parameter are refused. An empty cookie counts as absent: a cookie cleared on
///   logout without being expired must not break anonymous browsing.
/// - A header source's header with another scheme (`Authorization: Basic …` when the source wants `Bearer`)
///   is not a token, and is otherwise ignored.
public struct TokenExtractor: Sendable, Hashable {
    public let sources: [TokenSource]

    public init(sources: [TokenSource] = [.authorizationBearer]) {
        self.sources = sources
    }

    /// - Parameters:
    ///   - headers: the request's header fields in order, names in any case (NIO's `HTTPHeaders` is such a
    ///     sequence).
    ///   - query: the raw query string, after the `?` (see `RequestPath.splitTarget`); nil when there is none.
    ///
    /// Inlinable so that it is specialized for the caller's header type (NIO's `HTTPHeaders` in the proxy): it
    /// runs on every request, and unspecialized iteration of a generic sequence costs more than the rest of
    /// the extraction. With one header source it reads that header's value directly; otherwise it keeps only
    /// the headers a source reads and hands them on.
    @inlinable
    public func extract(
        headers: some Sequence<(name: String, value: String)>, query: Substring?
    ) -> TokenExtraction {
        // The usual configuration, one header source: its header's value and whether it comes twice are all
        // it takes. Nothing is collected, and the general path's per-source tables (three allocations) are
        // skipped.
        if sources.count == 1, case .header = sources[0] {
            var value: String?
            for header in headers where isRead(headerNamed: header.name) {
                if value != nil { return extract(onlyHeaderValue: nil, repeated: true) }
                value = header.value
            }
            return extract(onlyHeaderValue: value, repeated: false)
        }
        var relevant: [(name: String, value: String)] = []
        for header in headers where isRead(headerNamed: header.name) { relevant.append(header) }
        return extract(relevantHeaders: relevant, query: query)
    }

    /// Whether some source reads the header called `name` (in any letter case): a header source's own
    /// header, or `Cookie` when a source is a cookie.
    public func isRead(headerNamed name: String) -> Bool {
        for source in sources {
            switch source {
            case .header(let sourceName, _):
                if PolicyText.equalsIgnoringASCIICase(name, sourceName) { return true }
            case .cookie:
                if PolicyText.equalsIgnoringASCIICase(name, "Cookie") { return true }
            case .query:
                continue
            }
        }
        return false
    }

    /// `extract(headers:query:)` on the headers some source reads (any others are ignored).
    @usableFromInline
    func extract(relevantHeaders headers: [(name: String, value: String)], query: Substring?) -> TokenExtraction {
        var headerCounts = [Int](repeating: 0, count: sources.count)
        var headerValues = [Substring?](repeating: nil, count: sources.count)
        var found = [Substring?](repeating: nil, count: sources.count)

        for header in headers {
            for (index, source) in sources.enumerated() {
                switch source {
                case .header(let name, _):
                    guard PolicyText.equalsIgnoringASCIICase(header.name, name) else { continue }
                    headerCounts[index] += 1
                    headerValues[index] = header.value[...]
                case .cookie(let name):
                    guard PolicyText.equalsIgnoringASCIICase(header.name, "Cookie") else { continue }
                    for cookie in Self.cookies(in: header.value[...])
                    where PolicyText.sameBytes(cookie.name, name) && !cookie.value.isEmpty {
                        guard record(cookie.value, at: index, in: &found) else {
                            return .invalidRequest("\(Self.capitalized(source)) appears twice with different values")
                        }
                    }
                case .query:
                    continue
                }
            }
        }

        for (index, source) in sources.enumerated() {
            switch source {
            case .header(let name, let scheme):
                if headerCounts[index] > 1 { return .invalidRequest("More than one \(name) header") }
                guard let value = headerValues[index] else { continue }
                switch decide(Self.credential(in: value, scheme: scheme), from: source) {
                case .none: continue
                case .token(let token, _): found[index] = token
                case let refusal: return refusal
                }
            case .query(let name):
                guard let query else { continue }
                for parameter in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
                    let parameter = Substring(parameter)
                    let equals = parameter.utf8.firstIndex(of: UInt8(ascii: "="))
                    let rawName = equals.map { parameter[..<$0] } ?? parameter
                    // A name that does not decode cannot be this parameter.
                    guard let decodedName = PolicyText.percentDecoded(rawName, plusAsSpace: true),
                        PolicyText.sameBytes(decodedName, name)
                    else { continue }
                    let rawValue =
                        equals.map { parameter[parameter.utf8.index(after: $0)...] } ?? parameter[parameter.endIndex...]
                    guard let value = PolicyText.percentDecoded(rawValue, plusAsSpace: true) else {
                        return .invalidRequest("\(Self.capitalized(source)) is not valid percent-encoding")
                    }
                    guard !value.isEmpty else { return .invalidRequest("\(Self.capitalized(source)) is empty") }
                    guard record(value[...], at: index, in: &found) else {
                        return .invalidRequest("\(Self.capitalized(source)) appears twice with different values")
                    }
                }
            case .cookie:
                continue
            }
        }

        var result: (token: Substring, source: TokenSource)?
        for (index, source) in sources.enumerated() {
            guard let token = found[index] else { continue }
            guard let first = result else {
                result = (token, source)
                continue
            }
            guard PolicyText.sameBytes(first.token, token) else {
                return .invalidRequest("Different tokens in \(first.source) and \(source)")
            }
        }
        guard let result else { return .none }
        return .token(result.token, source: result.source)
    }

    /// The decision when the only source is a header: `value` is its header's, `repeated` whether it came
    /// more than once.
    @usableFromInline
    func extract(onlyHeaderValue value: String?, repeated: Bool) -> TokenExtraction {
        guard case .header(let name, let scheme) = sources[0] else { preconditionFailure("not a header source") }
        if repeated { return .invalidRequest("More than one \(name) header") }
        guard let value else { return .none }
        return decide(Self.credential(in: value[...], scheme: scheme), from: sources[0])
    }

    /// What one header source's credential amounts to on its own.
    private func decide(_ credential: Credential, from source: TokenSource) -> TokenExtraction {
        switch credential {
        case .absent: return .none
        case .empty:
            if case .header(_, let scheme?) = source {
                return .invalidRequest("\(Self.capitalized(source)) has the \(scheme) scheme but no token")
            }
            return .invalidRequest("\(Self.capitalized(source)) is empty")
        case .token(let token): return .token(token, source: source)
        }
    }

    /// Records a value found in one source; false when that source already holds a different one.
    private func record(_ value: Substring, at index: Int, in found: inout [Substring?]) -> Bool {
        if let existing = found[index] { return PolicyText.sameBytes(existing, value) }
        found[index] = value
        return true
    }

    private enum Credential {
        /// No credential of this scheme.
        case absent
        /// The scheme (or, without one, the header) with nothing after it.
        case empty
        case token(Substring)
    }

    private static func credential(in value: Substring, scheme: String?) -> Credential {
        let value = PolicyText.trimmingOptionalWhitespace(value)
        guard let scheme else { return value.isEmpty ? .empty : .token(value) }
        let bytes = value.utf8
        let schemeLength = scheme.utf8.count
        guard bytes.count >= schemeLength else { return .absent }
        let schemeEnd = bytes.index(bytes.startIndex, offsetBy: schemeLength)
        guard PolicyText.equalsIgnoringASCIICase(Substring(bytes[..<schemeEnd]), scheme) else { return .absent }
        // RFC 9110 §11.4: the scheme, then at least one space. "Bearerabc" is another scheme.
        guard schemeEnd != bytes.endIndex else { return .empty }
        guard bytes[schemeEnd] == PolicyText.space || bytes[schemeEnd] == PolicyText.tab else { return .absent }
        let token = PolicyText.trimmingOptionalWhitespace(Substring(bytes[schemeEnd...]))
        return token.isEmpty ? .empty : .token(token)
    }

    /// The cookies in one `Cookie` header (RFC 6265 §4.2.1, read leniently as §5.4 allows): pairs separated by
    /// `;`, spaces around names and values trimmed, one pair of surrounding double quotes removed, pieces
    /// without `=` skipped. Names and values are not decoded.
    static func cookies(in header: Substring) -> [(name: Substring, value: Substring)] {
        var cookies: [(name: Substring, value: Substring)] = []
        for piece in header.utf8.split(separator: UInt8(ascii: ";")) {
            let piece = Substring(piece)
            guard let equals = piece.utf8.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let name = PolicyText.trimmingOptionalWhitespace(piece[..<equals])
            var value = PolicyText.trimmingOptionalWhitespace(piece[piece.utf8.index(after: equals)...])
            let quote = UInt8(ascii: "\"")
            if value.utf8.count >= 2, value.utf8.first == quote, value.utf8.last == quote {
                value = Substring(value.utf8.dropFirst().dropLast())
            }
            guard !name.isEmpty else { continue }
            cookies.append((name, value))
        }
        return cookies
    }

    /// "The Authorization header" and so on, to start a sentence.
    private static func capitalized(_ source: TokenSource) -> String {
        "T" + source.description.dropFirst()
    }
}
