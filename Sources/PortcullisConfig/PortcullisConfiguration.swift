public import Foundation
public import PortcullisCore
public import PortcullisKeySource

/// Everything `config.json` holds: where to listen, where to relay, how tokens are found and judged, what
/// is forwarded. Read strictly: an unknown key is an error, every error names its JSON path, and all of
/// them are reported at once.
///
/// A hand-written reader over Portcullis's own JSON parser rather than `Codable`: `JSONDecoder` stops at the
/// first error, ignores unknown keys and accepts duplicate keys, and this file is policy in front of
/// someone's data.
public struct PortcullisConfiguration: Sendable {
    /// `host:port` to listen on.
    public var listen: (host: String, port: Int) = ("127.0.0.1", 8080)
    public var upstream: Upstream
    /// Where tokens are looked for, in order.
    public var tokenSources: [TokenSource] = [.authorizationBearer]
    public var providers: [ProviderConfiguration]
    /// The role forwarded with no token on an optional route, or a valid token without a role claim.
    public var anonymousRole: String?
    public var forward = Forwarding()
    public var rules = RuleSet([])
    public var errorFormat: AuthDecision.ErrorFormat = .portcullis
    public var limits = Limits()
    /// `host:port` of the admin listener (`/healthz`, `/readyz`, `/metrics`); nil for none. Separate from the
    /// proxy's port so that it never faces the public.
    public var adminListen: (host: String, port: Int)?
    public var mode: Mode = .proxy
    /// How long a graceful shutdown (SIGTERM, SIGINT) lets requests in flight finish.
    public var drainTimeout: Double = 15

    /// What the listener is.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// A reverse proxy in front of `upstream`.
        case proxy
        /// A decision endpoint for nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth` and Envoy
        /// `ext_authz` (HTTP): 200 with the identity headers, or the refusal. No upstream.
        case forwardAuth = "forward_auth"
    }

    /// The backend requests are relayed to.
    public struct Upstream: Sendable, Hashable {
        /// `http://host:port`.
        public var url: String
        public var connectTimeout: Double = 2
        /// How long the upstream may take to start answering.
        public var timeout: Double = 30
        /// Idle keep-alive connections kept per event loop.
        public var maxIdle = 16

        public init(url: String) {
            self.url = url
        }
    }

    /// The headers Portcullis sets. Every one of them is first removed from the client's request.
    public struct Forwarding: Sendable {
        public var roleHeader = "X-Postgres-Role"
        public var audienceHeader: String?
        /// Header name → claim path; arrays and objects are compact JSON unless `join` is set.
        public var claims: [(header: String, path: ClaimPath, join: String?)] = []
        /// A header carrying the verified payload as compact JSON.
        public var claimsHeader: String?
        /// Whether the client's `Authorization` header is passed on.
        public var keepAuthorization = true

        /// Every header name Portcullis owns.
        public var ownedHeaders: [String] {
            [roleHeader] + [audienceHeader, claimsHeader].compactMap { $0 } + claims.map(\.header)
        }
    }

    public struct Limits: Sendable, Hashable {
        public var maxHeaderBytes = 16 * 1024
        public var headerTimeout: Double = 10
        public var idleTimeout: Double = 60
        public var maxConnections = 1024
        public var maxBodyBytes: Int?
        public var maxTokenBytes = 8 * 1024

        public init() {}
    }

    static let topLevelKeys: Set<String> = [
        "listen", "upstream", "token_sources", "providers", "issuer", "audiences", "algorithms", "require_exp",
        "clock_skew", "role_claim_key", "anonymous_role", "forward", "rules", "error_format", "limits", "admin", "mode",
        "drain_timeout",
    ]

    /// Reads a configuration document.
    public static func decode(
        _ bytes: [UInt8],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Result<PortcullisConfiguration, ConfigurationErrors> {
        let document: JSONValue
        do { document = try JSONParser(maxDepth: 32).parse(bytes) } catch {
            return .failure(ConfigurationErrors(errors: [ConfigurationError("", "not valid JSON: \(error)")]))
        }
        guard case .object(let root) = document else {
            return .failure(ConfigurationErrors(errors: [ConfigurationError("", "must be a JSON object")]))
        }
        var reader = ConfigurationReader(members: root, path: "")
        reader.refuseUnknownKeys(topLevelKeys)
        var errors = reader.errors
        reader.errors = []

        let providers: [ProviderConfiguration]
        switch ProviderConfiguration.decodeAll(from: root, environment: environment) {
        case .success(let decoded): providers = decoded
        case .failure(let failure):
            errors += failure.errors
            providers = []
        }

        var configuration = PortcullisConfiguration(upstream: Upstream(url: ""), providers: providers)
        if let listen = reader.string("listen") {
            if let address = Self.hostAndPort(listen) {
                configuration.listen = address
            } else {
                reader.fail("listen", "must be host:port, e.g. \"127.0.0.1:8080\"")
            }
        }
        if let drain = reader.duration("drain_timeout", minimum: 0) { configuration.drainTimeout = drain }
        if let mode = reader.string("mode") {
            if let parsed = Mode(rawValue: mode) {
                configuration.mode = parsed
            } else {
                reader.fail("mode", "must be \"proxy\" or \"forward_auth\"")
            }
        }
        if configuration.mode == .forwardAuth && root["upstream"] == nil {
            // Forward-auth answers itself; a placeholder keeps the type simple and is never dialled.
            configuration.upstream = Upstream(url: "http://127.0.0.1:9")
        } else {
            configuration.upstream = reader.upstream() ?? Upstream(url: "")
        }
        configuration.anonymousRole = reader.string("anonymous_role")
        if let format = reader.string("error_format") {
            if let parsed = AuthDecision.ErrorFormat(rawValue: format) {
                configuration.errorFormat = parsed
            } else {
                reader.fail("error_format", "must be \"portcullis\" or \"postgrest\"")
            }
        }
        configuration.tokenSources = reader.tokenSources() ?? [.authorizationBearer]
        configuration.rules = RuleSet(reader.rules())
        configuration.forward = reader.forwarding()
        configuration.limits = reader.limits()
        configuration.adminListen = reader.admin()
        for index in configuration.providers.indices {
            configuration.providers[index].limits.maxTokenBytes = configuration.limits.maxTokenBytes
        }
        errors += reader.errors
        return errors.isEmpty ? .success(configuration) : .failure(ConfigurationErrors(errors: errors))
    }

    /// A few lines for `portcullis check`.
    public var summary: String {
        var lines = [
            mode == .forwardAuth
                ? "listen \(listen.host):\(listen.port), forward-auth mode (decisions only, no upstream)"
                : "listen \(listen.host):\(listen.port) → upstream \(upstream.url)",
            "tokens from: \(tokenSources.map(\.description).joined(separator: ", "))",
        ]
        for provider in providers {
            let source: String =
                switch provider.keySource {
                case .jwksURL(let url): "jwks_url \(url)"
                case .inlineJWKS: "inline jwks"
                case .secret: "HMAC secret"
                case .discovery(let issuer): "discovery \(issuer)"
                }
            lines.append(
                "provider \(provider.name): \(source), issuer \(provider.issuer ?? "any"), audiences "
                    + (provider.audiences.isEmpty ? "any" : provider.audiences.joined(separator: ",")))
        }
        lines.append("\(rules.rules.count) rule(s); unmatched requests need a valid token")
        lines.append("forwarded: \(forward.ownedHeaders.joined(separator: ", "))")
        if let adminListen { lines.append("admin: \(adminListen.host):\(adminListen.port)") }
        return lines.joined(separator: "\n")
    }

    static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}

extension ConfigurationReader {
    fileprivate mutating func upstream() -> PortcullisConfiguration.Upstream? {
        switch members["upstream"] {
        case nil:
            fail("upstream", "is required, e.g. \"http://127.0.0.1:3000\"")
            return nil
        case .string(let url):
            return checkedUpstreamURL(url, at: "upstream").map { PortcullisConfiguration.Upstream(url: $0) }
        case .object(let fields):
            var nested = ConfigurationReader(members: fields, path: "upstream")
            nested.refuseUnknownKeys(["url", "connect_timeout", "timeout", "max_idle"])
            var upstream: PortcullisConfiguration.Upstream?
            if let url = nested.string("url") {
                upstream = nested.checkedUpstreamURL(url, at: "upstream.url").map {
                    PortcullisConfiguration.Upstream(url: $0)
                }
            } else if fields["url"] == nil {
                nested.fail("url", "is required")
            }
            if let value = nested.duration("connect_timeout", minimum: 0.001) { upstream?.connectTimeout = value }
            if let value = nested.duration("timeout", minimum: 0.001) { upstream?.timeout = value }
            if let value = nested.integer("max_idle", in: 0...10_000) { upstream?.maxIdle = value }
            errors += nested.errors
            return upstream
        default:
            fail("upstream", "must be a URL or an object with \"url\"")
            return nil
        }
    }

    fileprivate mutating func checkedUpstreamURL(_ url: String, at path: String) -> String? {
        guard let components = URLComponents(string: url), components.scheme == "http", components.host != nil,
            components.query == nil
        else {
            errors.append(
                ConfigurationError(path, "must be an http:// URL with a host, e.g. \"http://127.0.0.1:3000\""))
            return nil
        }
        return url
    }

    fileprivate mutating func integer(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = members[key] else { return nil }
        guard case .number(let number) = value, let integer = Int(number.literal), range.contains(integer) else {
            fail(key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return integer
    }

    fileprivate mutating func tokenSources() -> [TokenSource]? {
        guard let value = members["token_sources"] else { return nil }
        guard case .array(let entries) = value, !entries.isEmpty else {
            fail("token_sources", "must be a non-empty list")
            return nil
        }
        var sources: [TokenSource] = []
        for (index, entry) in entries.enumerated() {
            let path = self.path(of: "token_sources[\(index)]")
            guard case .object(let fields) = entry else {
                errors.append(ConfigurationError(path, "must be an object such as {\"header\": \"Authorization\"}"))
                continue
            }
            var nested = ConfigurationReader(members: fields, path: path)
            let kinds = ["header", "query", "cookie"].filter { fields[$0] != nil }
            if kinds.count != 1 {
                nested.fail(kinds.count > 1 ? kinds[1] : "header", "needs exactly one of header, query or cookie")
            }
            nested.refuseUnknownKeys(["header", "scheme", "query", "cookie"])
            if fields["scheme"] != nil && fields["header"] == nil { nested.fail("scheme", "applies only to a header") }
            if kinds.count == 1, let name = nested.string(kinds[0]) {
                switch kinds[0] {
                case "header":
                    if HeaderName.isValid(name) {
                        sources.append(.header(name: name, scheme: nested.string("scheme")))
                    } else {
                        nested.fail("header", "is not a valid header name")
                    }
                case "query": sources.append(.query(name: name))
                default: sources.append(.cookie(name: name))
                }
            }
            errors += nested.errors
        }
        return sources
    }

    fileprivate mutating func rules() -> [AccessRule] {
        guard let value = members["rules"] else { return [] }
        guard case .array(let entries) = value else {
            fail("rules", "must be a list")
            return []
        }
        var rules: [AccessRule] = []
        for (index, entry) in entries.enumerated() {
            let path = self.path(of: "rules[\(index)]")
            guard case .object(let fields) = entry else {
                errors.append(ConfigurationError(path, "must be an object"))
                continue
            }
            var nested = ConfigurationReader(members: fields, path: path)
            nested.refuseUnknownKeys(["path", "methods", "auth", "roles", "scopes"])
            let pattern = nested.string("path")
            if fields["path"] == nil { nested.fail("path", "is required") }
            var auth = AuthRequirement.required
            if let text = nested.string("auth") {
                if let parsed = AuthRequirement(rawValue: text) {
                    auth = parsed
                } else {
                    nested.fail("auth", "must be \"none\", \"optional\" or \"required\"")
                }
            }
            let methods = nested.strings("methods").map(Set.init)
            let roles = nested.strings("roles")
            let scopes = nested.strings("scopes")
            if auth == .none && (roles != nil || scopes != nil) {
                nested.fail("auth", "a rule with auth \"none\" cannot require roles or scopes")
            }
            var compiled: PathPattern?
            if let pattern {
                do { compiled = try PathPattern(pattern) } catch { nested.fail("path", error.message) }
            }
            if let compiled, nested.errors.isEmpty {
                rules.append(AccessRule(path: compiled, methods: methods, auth: auth, roles: roles, scopes: scopes))
            }
            errors += nested.errors
        }
        return rules
    }

    fileprivate mutating func forwarding() -> PortcullisConfiguration.Forwarding {
        var forward = PortcullisConfiguration.Forwarding()
        guard let value = members["forward"] else { return forward }
        guard case .object(let fields) = value else {
            fail("forward", "must be an object")
            return forward
        }
        var nested = ConfigurationReader(members: fields, path: "forward")
        nested.refuseUnknownKeys(["role_header", "audience_header", "claims", "claims_header", "authorization"])
        func header(_ key: String) -> String? {
            guard let name = nested.string(key) else { return nil }
            guard HeaderName.isValid(name), !HeaderName.isReserved(name) else {
                nested.fail(key, "\"\(name)\" cannot be set by Portcullis")
                return nil
            }
            return name
        }
        if let role = header("role_header") { forward.roleHeader = role }
        forward.audienceHeader = header("audience_header")
        forward.claimsHeader = header("claims_header")
        if let mode = nested.string("authorization") {
            switch mode {
            case "keep": forward.keepAuthorization = true
            case "strip": forward.keepAuthorization = false
            default: nested.fail("authorization", "must be \"keep\" or \"strip\"")
            }
        }
        if let claims = fields["claims"] {
            if case .object(let mappings) = claims {
                for name in mappings.keys.sorted() {
                    let path = "forward.claims.\(name)"
                    guard HeaderName.isValid(name), !HeaderName.isReserved(name) else {
                        nested.errors.append(ConfigurationError(path, "\"\(name)\" cannot be set by Portcullis"))
                        continue
                    }
                    var source: String?
                    var join: String?
                    switch mappings[name] {
                    case .string(let text): source = text
                    case .object(let spec):
                        var specReader = ConfigurationReader(members: spec, path: path)
                        specReader.refuseUnknownKeys(["path", "join"])
                        source = specReader.string("path")
                        if spec["path"] == nil { specReader.fail("path", "is required") }
                        join = specReader.string("join")
                        nested.errors += specReader.errors
                    default:
                        nested.errors.append(
                            ConfigurationError(path, "must be a claim path or {\"path\": …, \"join\": \",\"}"))
                    }
                    if let source {
                        do { forward.claims.append((name, try ClaimPath(source), join)) } catch {
                            nested.errors.append(ConfigurationError(path, "\(error)"))
                        }
                    }
                }
            } else {
                nested.fail("claims", "must be an object mapping header names to claim paths")
            }
        }
        // One header, one meaning: the role header can never be overwritten by a claim mapping.
        var seen: Set<String> = []
        for name in forward.ownedHeaders where !seen.insert(name.lowercased()).inserted {
            nested.fail("claims", "header \"\(name)\" is set twice")
        }
        errors += nested.errors
        return forward
    }

    fileprivate mutating func admin() -> (host: String, port: Int)? {
        guard let value = members["admin"] else { return nil }
        guard case .object(let fields) = value else {
            fail("admin", "must be an object")
            return nil
        }
        var nested = ConfigurationReader(members: fields, path: "admin")
        nested.refuseUnknownKeys(["listen"])
        var address: (host: String, port: Int)?
        if let listen = nested.string("listen") {
            address = PortcullisConfiguration.hostAndPort(listen)
            if address == nil { nested.fail("listen", "must be host:port, e.g. \"127.0.0.1:9901\"") }
        } else if fields["listen"] == nil {
            nested.fail("listen", "is required")
        }
        errors += nested.errors
        return address
    }

    fileprivate mutating func limits() -> PortcullisConfiguration.Limits {
        var limits = PortcullisConfiguration.Limits()
        guard let value = members["limits"] else { return limits }
        guard case .object(let fields) = value else {
            fail("limits", "must be an object")
            return limits
        }
        var nested = ConfigurationReader(members: fields, path: "limits")
        nested.refuseUnknownKeys([
            "max_header_bytes", "header_timeout", "idle_timeout", "max_connections", "max_body_bytes",
            "max_token_bytes",
        ])
        if let value = nested.integer("max_header_bytes", in: 1024...1_048_576) { limits.maxHeaderBytes = value }
        if let value = nested.duration("header_timeout", minimum: 0.1) { limits.headerTimeout = value }
        if let value = nested.duration("idle_timeout", minimum: 0.1) { limits.idleTimeout = value }
        if let value = nested.integer("max_connections", in: 1...1_000_000) { limits.maxConnections = value }
        if let value = nested.integer("max_body_bytes", in: 0...Int(Int32.max)) { limits.maxBodyBytes = value }
        if let value = nested.integer("max_token_bytes", in: 256...65536) { limits.maxTokenBytes = value }
        errors += nested.errors
        return limits
    }
}

/// HTTP header names (RFC 9110 §5.1: a token).
enum HeaderName {
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    true
                default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }

    /// Headers that framing, routing or hop-by-hop handling own; Portcullis never sets them from claims.
    static func isReserved(_ name: String) -> Bool {
        [
            "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
            "trailer", "upgrade", "proxy-authorization", "authorization", "cookie", "set-cookie",
            "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        ].contains(name.lowercased())
    }
}
