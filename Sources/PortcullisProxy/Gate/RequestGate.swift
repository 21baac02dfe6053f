import Foundation
public import NIOHTTP1
public import PortcullisConfig
public import PortcullisCore

/// What happens to a request, decided from its head alone: the path, the rule, the token. Pure: no I/O, no
/// clock; verification of a token is the caller's, and `decide(_:verification:)` finishes the decision.
public struct RequestGate: Sendable {
    public let rules: RuleSet
    public let extractor: TokenExtractor
    public let errorFormat: AuthDecision.ErrorFormat
    public let maxHeaderBytes: Int
    public let maxBodyBytes: Int?

    public init(configuration: PortcullisConfiguration) {
        rules = configuration.rules
        extractor = TokenExtractor(sources: configuration.tokenSources)
        errorFormat = configuration.errorFormat
        maxHeaderBytes = configuration.limits.maxHeaderBytes
        maxBodyBytes = configuration.limits.maxBodyBytes
    }

    /// The request as the gate understood it.
    public struct Admission: Sendable {
        /// The rule that judges it.
        public let rule: AccessRule
        /// The request-target to send upstream: the normalized path and the query exactly as received.
        public let upstreamTarget: String
        /// The first step of the decision.
        public let evaluation: AuthEvaluation
    }

    public enum Verdict: Sendable {
        /// Answer at once; nothing goes upstream.
        case respond(ProxyResponse)
        /// Decide, possibly after verifying a token.
        case admit(Admission)
    }

    public func evaluate(_ head: HTTPRequestHead) -> Verdict {
        if headerBytes(head) > maxHeaderBytes { return .respond(.headersTooLarge) }
        if let maxBodyBytes, let length = head.headers.first(name: "content-length").flatMap(Int.init),
            length > maxBodyBytes
        {
            return .respond(.bodyTooLarge)
        }
        // RFC 9112 §6.1: chunked is the only coding a proxy must understand; anything else (gzip, a list) could
        // frame the body differently for the upstream. The decoder already refuses chunked beside a length.
        // Raw values: the canonical form drops empty ones, and an empty Transfer-Encoding is not chunked.
        let codings = head.headers["transfer-encoding"]
        if !codings.isEmpty
            && (codings.count != 1
                || !PolicyText.equalsIgnoringASCIICase(
                    codings[0].trimmingCharacters(in: .whitespaces), "chunked"))
        {
            return .respond(.unsupportedTransferCoding)
        }
        let target: Substring
        switch Self.originForm(of: head.uri[...]) {
        case .some(let originForm): target = originForm
        case .none:
            return .respond(.badPath(RequestPathRefusal(.notOriginForm, "The request target must be a path")))
        }
        let (rawPath, query) = RequestPath.splitTarget(target)
        let path: RequestPath
        do {
            path = try RequestPath(rawPath)
        } catch {
            return .respond(.badPath(error))
        }
        let rule = rules.match(method: head.method.rawValue, path: path)
        let extraction = extractor.extract(headers: head.headers, query: query)
        var upstreamTarget = path.normalized
        if let query {
            upstreamTarget += "?"
            upstreamTarget += query
        }
        return .admit(
            Admission(
                rule: rule, upstreamTarget: upstreamTarget,
                evaluation: AuthDecision.evaluate(rule: rule, extraction: extraction)))
    }

    /// The response for a denial, nil for `allow`.
    public func response(for decision: AuthDecision) -> ProxyResponse? {
        ProxyResponse(decision, errorFormat: errorFormat)
    }

    /// The origin-form part of a request-target. An absolute-form target (`http://host/path?q`, which
    /// RFC 9112 §3.2.2 says a server must accept) is reduced to its path and query: its authority is ignored,
    /// so it can never choose the upstream, and the Host header is passed on as sent. Asterisk-form and
    /// authority-form are not for a reverse proxy: nil.
    static func originForm(of target: Substring) -> Substring? {
        let bytes = target.utf8
        if bytes.first == UInt8(ascii: "/") { return target }
        for scheme in ["http://", "https://"] {
            guard bytes.count >= scheme.utf8.count,
                PolicyText.equalsIgnoringASCIICase(target.prefix(scheme.count), scheme)
            else { continue }
            let afterScheme = target.dropFirst(scheme.count)
            guard
                let pathStart = afterScheme.utf8.firstIndex(where: {
                    $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?")
                })
            else { return "/" }
            let rest = afterScheme[pathStart...]
            // `http://host?q` has an empty path, which is "/" (RFC 9112 §3.2.1).
            return rest.utf8.first == UInt8(ascii: "?") ? Substring("/" + rest) : rest
        }
        return nil
    }

    /// The size of the request line and header section as sent, give or take the line endings: the figure
    /// `limits.max_header_bytes` bounds.
    func headerBytes(_ head: HTTPRequestHead) -> Int {
        var total = head.method.rawValue.utf8.count + head.uri.utf8.count + 12
        for header in head.headers { total += header.name.utf8.count + header.value.utf8.count + 4 }
        return total
    }
}
