public import PortcullisCore

/// One identity provider: where its keys come from, and what its tokens must satisfy.
public struct ProviderConfiguration: Sendable, Equatable {
    /// Where the keys come from. Exactly one per provider.
    public enum KeySource: Sendable, Hashable {
        /// A JWKS at an `https://`, `http://` or `file://` URL, fetched with libcurl and refreshed.
        case jwksURL(String)
        /// A JWKS given inline in the configuration. Never refreshed.
        case inlineJWKS(JSONValue)
        /// An HMAC secret (from `secret_env` or `secret_file`), as raw bytes. Never refreshed.
        case secret([UInt8])
        /// An OpenID issuer: `<issuer>/.well-known/openid-configuration` names the `jwks_uri`.
        case discovery(issuer: String)
    }

    /// Limits and trust for fetches.
    public struct Fetch: Sendable, Hashable {
        /// Connection timeout (default 2 s).
        public var connectTimeout: Duration = .seconds(2)
        /// Whole-transfer timeout (default 5 s).
        public var timeout: Duration = .seconds(5)
        /// A PEM CA bundle to trust instead of the system store.
        public var caFile: String?
        /// Largest document accepted (default 1 MiB).
        public var maxBodyBytes: Int = 1 << 20

        public init() {}
    }

    /// The provider's name, used in logs, metrics and readiness.
    public var name: String
    public var keySource: KeySource
    /// `iss` tokens must carry; with discovery, the discovered issuer when this is nil.
    public var issuer: String?
    /// Accepted audiences; empty accepts any.
    public var audiences: [String] = []
    /// Allowed algorithms; nil allows every algorithm a held key accepts.
    public var algorithms: Set<JWSAlgorithm>?
    /// Whether `exp` is required (default true).
    public var requireExpiry = true
    /// Clock skew for `exp`, `nbf` and `iat`, in seconds (default 30).
    public var clockSkew: Double = 30
    /// PostgREST's `jwt-role-claim-key`, compiled.
    public var roleClaim: ClaimPath?
    /// The refresh lifecycle.
    public var refresh = RefreshPolicy()
    public var fetch = Fetch()
    /// How long a request with an unknown `kid` waits for a refetch (default 1 s).
    public var unknownKidWait: Duration = .seconds(1)
    /// Limits applied to tokens before any signature work.
    public var limits = TokenLimits()

    public init(name: String, keySource: KeySource) {
        self.name = name
        self.keySource = keySource
    }

    /// The verification policy, with `issuer` resolved (a discovered issuer counts when none is configured).
    func policy(issuer: String?) -> VerificationPolicy {
        VerificationPolicy(
            provider: name, algorithms: algorithms,
            claims: ClaimRules(
                issuer: issuer, audiences: audiences, requireExpiry: requireExpiry, clockSkew: clockSkew),
            roleClaim: roleClaim, limits: limits)
    }
}
