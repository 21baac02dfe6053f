/// Which requests a rule covers, by normalized path.
///
/// - `/exact`: that path, with or without one trailing slash. `/admin` covers `/admin` and `/admin/`, so adding
///   a slash can never step around a rule (the bypass behind several framework CVEs where the proxy and the
///   backend disagreed about trailing slashes).
/// - `/prefix/*`: `/prefix/` and everything under it, and `/prefix` itself. Including the bare `/prefix`
///   means a protective rule such as `/admin/*` also guards `/admin`, which most backends serve as the same
///   resource or its index.
/// - `/*`: every path.
/// - A `*` after anything but `/` is a plain prefix: `/api*` covers `/api`, `/apis` and `/api/x`.
///
/// Only a final `*` is a wildcard; one anywhere else is a literal character. The pattern is normalized like a
/// request path (`/%7Euser/*` and `/~user/*` are the same pattern), so it compares with normalized paths.
public struct PathPattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern as configured.
    public let source: String
    /// The normalized path, or the normalized prefix before the `*`.
    private let literal: String
    private let isPrefix: Bool

    /// Compiles `pattern`; refused for the same reasons a request path would be.
    public init(_ pattern: String) throws(RequestPathRefusal) {
        source = pattern
        if pattern.utf8.last == UInt8(ascii: "*") {
            let prefix = pattern.utf8.dropLast()
            isPrefix = true
            // A normalized prefix keeps its trailing slash: "/public/" stays "/public/", "/" stays "/".
            literal = try RequestPath(Substring(prefix)).normalized
        } else {
            isPrefix = false
            literal = try RequestPath(pattern).normalized
        }
    }

    /// The pattern that covers every path.
    public static let everything = PathPattern(source: "/*", literal: "/", isPrefix: true)

    private init(source: String, literal: String, isPrefix: Bool) {
        self.source = source
        self.literal = literal
        self.isPrefix = isPrefix
    }

    public var description: String { source }

    /// Whether `path` is covered.
    public func matches(_ path: RequestPath) -> Bool {
        let path = path.normalized.utf8
        let literal = literal.utf8
        if isPrefix {
            if path.starts(with: literal) { return true }
            // "/public/*" also covers "/public".
            return literal.count > 1 && literal.last == PolicyText.slash && path.elementsEqual(literal.dropLast())
        }
        return Self.withoutTrailingSlash(path).elementsEqual(Self.withoutTrailingSlash(literal))
    }

    private static func withoutTrailingSlash(_ path: String.UTF8View) -> Substring.UTF8View {
        path.count > 1 && path.last == PolicyText.slash ? path.dropLast() : path[...]
    }
}

/// Whether a route needs a token.
public enum AuthRequirement: String, Sendable, Hashable, CaseIterable {
    /// Tokens are ignored entirely: not verified, not judged, never turned into an identity. Even a request
    /// with two conflicting tokens passes, since nothing about it is read.
    case none
    /// Anonymous requests pass without an identity; a token, when sent, must be valid and meet the rule's roles
    /// and scopes. A bad token is never downgraded to anonymous.
    case optional
    /// A valid token that meets the rule's roles and scopes is required.
    case required
}

/// One access rule: which requests it covers (path and methods) and what they need.
public struct AccessRule: Sendable, Hashable {
    public let path: PathPattern
    /// The methods covered, in uppercase; nil covers every method. Methods are compared ignoring ASCII case
    /// (`get` is `GET`): RFC 9110 makes them case-sensitive, but some servers are lenient, and a lowercase
    /// spelling must not step around a rule that the backend would apply anyway.
    public let methods: Set<String>?
    public let auth: AuthRequirement
    /// The roles admitted, compared with the token's role (see `admits(role:)`); nil admits any role, and no
    /// role at all. An empty list admits no token.
    public let roles: [String]?
    /// The scopes a token must all hold (see `missingScopes(in:)`); nil or empty requires none.
    public let scopes: [String]?

    public init(
        path: PathPattern,
        methods: Set<String>? = nil,
        auth: AuthRequirement = .required,
        roles: [String]? = nil,
        scopes: [String]? = nil
    ) {
        self.path = path
        self.methods = methods.map { Set($0.map(PolicyText.asciiUppercased)) }
        self.auth = auth
        self.roles = roles
        self.scopes = scopes
    }

    /// Compiles `path` with `PathPattern`; see there for the pattern syntax.
    public init(
        path: String,
        methods: Set<String>? = nil,
        auth: AuthRequirement = .required,
        roles: [String]? = nil,
        scopes: [String]? = nil
    ) throws(RequestPathRefusal) {
        self.init(path: try PathPattern(path), methods: methods, auth: auth, roles: roles, scopes: scopes)
    }

    /// The rule for requests no configured rule covers: a valid token, no roles, no scopes.
    public static let fallback = AccessRule(path: .everything)

    /// Whether this rule covers a request.
    public func matches(method: String, path: RequestPath) -> Bool {
        if let methods, !methods.contains(PolicyText.asciiUppercased(method)) { return false }
        return self.path.matches(path)
    }

    /// Whether the token's role (the value at the provider's role-claim path) is one of `roles`.
    ///
    /// - A string matches a listed role with exactly the same Unicode scalars (not merely canonically
    ///   equivalent: the role is forwarded to the backend, which compares bytes).
    /// - An array matches when any of its string elements does, so a path to a list of roles
    ///   (`.realm_access.roles`) can gate a route.
    /// - Anything else (number, bool, null, object) and no role match nothing. Role names are strings in every
    ///   identity provider and in Postgres; coercing `1` or `true` to text would paper over a role-claim path
    ///   that points at the wrong claim, and failing closed shows it.
    public func admits(role: JSONValue?) -> Bool {
        guard let roles else { return true }
        let isListed = { (name: String) in roles.contains { PolicyText.sameBytes($0, name) } }
        switch role {
        case .string(let name):
            return isListed(name)
        case .array(let elements):
            return elements.contains { element in
                guard case .string(let name) = element else { return false }
                return isListed(name)
            }
        default:
            return false
        }
    }

    /// The required scopes the claims do not grant, in the rule's order; empty when all are granted.
    public func missingScopes(in claims: [String: JSONValue]) -> [String] {
        guard let scopes, !scopes.isEmpty else { return [] }
        let granted = Self.grantedScopes(in: claims)
        return scopes.filter { scope in !granted.contains { PolicyText.sameBytes($0, scope) } }
    }

    /// Every scope a token grants: the union of `scope` (RFC 8693 §4.2, RFC 9068: a space-separated string)
    /// and `scp` (Okta: an array of strings; Microsoft Entra: a space-separated string). Either claim may be
    /// a string or an array of strings; other values, and non-string elements, grant nothing.
    public static func grantedScopes(in claims: [String: JSONValue]) -> [Substring] {
        var granted: [Substring] = []
        for name in ["scope", "scp"] {
            switch claims[name] {
            case .string(let list):
                // Split on the space byte only: scope tokens are ASCII (RFC 6749 §3.3), separated by one space;
                // empty pieces from extra spaces are dropped.
                granted += list.utf8.split(separator: PolicyText.space).map { Substring($0) }
            case .array(let elements):
                for case .string(let scope) in elements { granted.append(scope[...]) }
            default:
                break
            }
        }
        return granted
    }
}

/// The configured rules, in order.
public struct RuleSet: Sendable, Hashable {
    public let rules: [AccessRule]

    public init(_ rules: [AccessRule]) {
        self.rules = rules
    }

    /// The first rule that covers the request, or `AccessRule.fallback` (a valid token, no roles, no scopes)
    /// when none does. `path` is the normalized path: rules never see the raw one.
    public func match(method: String, path: RequestPath) -> AccessRule {
        rules.first { $0.matches(method: method, path: path) } ?? .fallback
    }
}
