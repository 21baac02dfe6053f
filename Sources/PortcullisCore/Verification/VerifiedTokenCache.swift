/// Verified tokens, remembered so that a client repeating its token is not verified again on every request.
///
/// Keyed by a digest of the token (the caller's: SHA-256 in the proxy), so the cache never holds token text.
/// Bounded: when full, an eighth of the entries go at once, in the dictionary's arbitrary order, which is as
/// good as random eviction and costs nothing per hit.
///
/// A hit is only a hit when the token would still verify now:
/// - `exp` and `nbf` are checked again on every lookup, with the skew the verifier used;
/// - the caller confirms the provider still publishes the key that verified it (`isKeyCurrent`), so a key
///   that leaves the JWKS takes its tokens with it;
/// - an entry is kept at most `maxAge` seconds, which bounds how long a key replaced under the same `kid`
///   can go unnoticed.
///
/// A value type without locks: the proxy keeps one per event loop.
public struct VerifiedTokenCache<Digest: Hashable & Sendable>: Sendable {
    public let capacity: Int
    public let maxAge: Double
    private var entries: [Digest: Entry] = [:]

    struct Entry: Sendable {
        let token: VerifiedToken
        /// The earliest of `exp` (plus the skew) and the end of `maxAge`: valid while `now` is before it.
        let expiresAt: Double
        /// `nbf` less the skew: valid from then on.
        let notBefore: Double
    }

    public init(capacity: Int, maxAge: Double = 300) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.maxAge = maxAge
        entries.reserveCapacity(min(capacity, 1024))
    }

    public var count: Int { entries.count }

    /// The verified token for `digest`, if it is cached and still valid at `now`; a stale entry is dropped.
    public mutating func lookup(
        _ digest: Digest, now: Double, isKeyCurrent: (VerifiedToken) -> Bool
    ) -> VerifiedToken? {
        guard let entry = entries[digest] else { return nil }
        let isValid = now < entry.expiresAt && now >= entry.notBefore && isKeyCurrent(entry.token)
        guard isValid else {
            entries[digest] = nil
            return nil
        }
        return entry.token
    }

    /// Remembers a token verified at `now` by a verifier that allowed `clockSkew` seconds.
    public mutating func insert(_ token: VerifiedToken, for digest: Digest, now: Double, clockSkew: Double) {
        if entries.count >= capacity, entries[digest] == nil {
            // The victims are taken out first: removing while a view of the keys is alive would copy the whole
            // table on every removal (copy-on-write), a stall of tens of milliseconds at 16,384 entries.
            let victims = Array(entries.keys.prefix(max(1, capacity / 8)))
            for victim in victims { entries.removeValue(forKey: victim) }
        }
        let exp = token.claims["exp"].flatMap(Self.seconds)
        let expiresAt = min(exp.map { $0 + clockSkew } ?? .infinity, now + maxAge)
        let notBefore = token.claims["nbf"].flatMap(Self.seconds).map { $0 - clockSkew } ?? -.infinity
        entries[digest] = Entry(token: token, expiresAt: expiresAt, notBefore: notBefore)
    }

    public mutating func removeAll() { entries.removeAll() }

    private static func seconds(_ value: JSONValue) -> Double? {
        guard case .number(let number) = value else { return nil }
        return number.doubleValue
    }
}
