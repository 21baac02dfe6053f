public import PortcullisCore
internal import PortcullisCrypto
public import PortcullisKeySource

/// SHA-256 of a token: the token cache's key, so the cache never holds token text.
public struct TokenDigest: Hashable, Sendable {
    let words: (UInt64, UInt64, UInt64, UInt64)

    /// Nil only if libcrypto fails (out of memory): the token is then decided without the cache, never under
    /// a key that another token could share.
    public init?(_ token: Substring) {
        var token = token
        guard let words = token.withUTF8({ SHA256Hash.words(of: UnsafeRawBufferPointer($0)) }) else { return nil }
        self.words = words
    }

    public static func == (lhs: TokenDigest, rhs: TokenDigest) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        // The digest is already uniform; one word is plenty for the table.
        hasher.combine(words.0)
    }
}

/// Token decisions for the relay: the authenticator behind a cache of verified tokens.
///
/// The cache is the caller's (one per event loop, no locks): `authorizeWithoutWaiting` reads and fills it,
/// and only a token whose `kid` is unknown goes to `authorize`, which may wait for a key refetch.
public final class Authorizer: Sendable {
    public let authenticator: TokenAuthenticator
    /// Each provider's clock skew, by name, for cache entries.
    private let clockSkews: [String: Double]

    /// Cache hits, misses and size go here.
    let metrics: ProxyMetrics?

    public init(authenticator: TokenAuthenticator, metrics: ProxyMetrics? = nil) {
        self.authenticator = authenticator
        self.metrics = metrics
        var skews: [String: Double] = [:]
        for source in authenticator.sources { skews[source.configuration.name] = source.configuration.clockSkew }
        clockSkews = skews
    }

    public enum Outcome: Sendable {
        case decided(Result<VerifiedToken, TokenRefusal>)
        /// Needs `authorize`, which may wait for a refetch.
        case wait
    }

    /// The decision from the cache or the keys held now.
    public func authorizeWithoutWaiting(
        _ token: Substring, now: Double, cache: inout VerifiedTokenCache<TokenDigest>
    ) -> Outcome {
        let digest = TokenDigest(token)
        let sizeBefore = cache.count
        defer { metrics?.cacheSizeChanged(by: cache.count - sizeBefore) }
        if let digest, let cached = cache.lookup(digest, now: now, confirmKey: confirmKey) {
            metrics?.recordCache(hit: true)
            return .decided(.success(cached))
        }
        metrics?.recordCache(hit: false)
        // Timed only here, where a signature is checked: a cache hit costs a lookup, and counting those would
        // bury the verification times an operator watches under a heap of sub-microsecond ones.
        let started = ContinuousClock.now
        let outcome = authenticator.authenticateWithoutWaiting(token, now: now)
        metrics?.recordVerification(ContinuousClock.now - started)
        switch outcome {
        case .decided(let result):
            if case .success(let verified) = result, let digest {
                remember(verified, digest: digest, now: now, in: &cache)
            }
            return .decided(result)
        case .afterRefetch:
            return .wait
        }
    }

    /// The decision, waiting (bounded) for a key refetch when the token's `kid` is unknown. The caller puts a
    /// success into its cache with `remember`.
    public func authorize(_ token: String, now: Double) async -> Result<VerifiedToken, TokenRefusal> {
        await authenticator.authenticate(token[...], now: now)
    }

    public func remember(
        _ verified: VerifiedToken, token: Substring, now: Double, in cache: inout VerifiedTokenCache<TokenDigest>
    ) {
        guard let digest = TokenDigest(token) else { return }
        let sizeBefore = cache.count
        remember(verified, digest: digest, now: now, in: &cache)
        metrics?.cacheSizeChanged(by: cache.count - sizeBefore)
    }

    private func remember(
        _ verified: VerifiedToken, digest: TokenDigest, now: Double, in cache: inout VerifiedTokenCache<TokenDigest>
    ) {
        cache.insert(verified, for: digest, now: now, clockSkew: clockSkews[verified.provider] ?? 0)
    }

    /// The version of the key set that holds the key of `token`, or nil when its provider no longer
    /// publishes it. While the set has not changed since the key was confirmed in it, that is the answer; the
    /// set is searched only once per entry after each change.
    private func confirmKey(_ token: VerifiedToken, confirmedIn confirmed: UInt64) -> UInt64? {
        // Read before the search: a set installed during it has another version, and is searched next time.
        guard let current = authenticator.keySetVersion(provider: token.provider) else { return nil }
        if current == confirmed && confirmed != KeySetVersion.unconfirmed { return current }
        return authenticator.stillHolds(provider: token.provider, keyID: token.keyID) ? current : nil
    }
}
