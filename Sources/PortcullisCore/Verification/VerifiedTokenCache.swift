/// The numbers key sources give the key sets they install (`KeySource.keySetVersion`), which the token cache
/// remembers per entry.
public enum KeySetVersion {
    /// The number no key set has: an entry whose key was not confirmed yet, a source that installed none.
    public static let unconfirmed: UInt64 = 0
}

/// Verified tokens, remembered so that a client repeating its token is not verified again on every request.
///
/// Keyed by a digest of the token (the caller's: SHA-256 in the proxy), so the cache never holds token text.
/// Bounded, first in, first out: when full, each new entry pushes out the oldest one. Eviction is one removal
/// per insert, never a sweep, so a stream of tokens seen once (a cache that is always full) costs the same on
/// every request; a cycle of distinct tokens smaller than the capacity always hits.
///
/// A hit is only a hit when the token would still verify now:
/// - `exp` and `nbf` are checked again on every lookup, with the skew the verifier used;
/// - the caller confirms the provider still publishes the key that verified it (`confirmKey`), so a key
///   that leaves the JWKS takes its tokens with it. Each entry remembers the version of the key set it was
///   last confirmed against, so the caller can answer from that alone while the set has not changed;
/// - an entry is kept at most `maxAge` seconds, which bounds how long a key replaced under the same `kid`
///   can go unnoticed.
///
/// A value type without locks: the proxy keeps one per event loop. Inlinable, so that it is specialized for
/// the proxy's digest type: every request goes through it, and unspecialized hashing costs more than the rest.
public struct VerifiedTokenCache<Digest: Hashable & Sendable>: Sendable {
    public let capacity: Int
    public let maxAge: Double
    @usableFromInline var entries: [Digest: Entry] = [:]
    /// Digests in insertion order, oldest at `oldest`: a ring of `capacity` slots. A digest whose entry was
    /// dropped (stale at lookup) stays here until its turn comes, and is skipped then.
    @usableFromInline var order: [Digest?]
    @usableFromInline var oldest = 0
    @usableFromInline var ordered = 0

    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline let token: VerifiedToken
        /// The earliest of `exp` (plus the skew) and the end of `maxAge`: valid while `now` is before it.
        @usableFromInline let expiresAt: Double
        /// `nbf` less the skew: valid from then on.
        @usableFromInline let notBefore: Double
        /// The key-set version the token's key was last confirmed in; `unconfirmed` until the first lookup.
        @usableFromInline var keySetVersion = KeySetVersion.unconfirmed

        @usableFromInline
        init(token: VerifiedToken, expiresAt: Double, notBefore: Double) {
            self.token = token
            self.expiresAt = expiresAt
            self.notBefore = notBefore
        }
    }

    public init(capacity: Int, maxAge: Double = 300) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.maxAge = maxAge
        // Sized once: growing the table would rehash every entry in one request's time.
        entries.reserveCapacity(capacity)
        order = Array(repeating: nil, count: capacity)
    }

    @inlinable
    public var count: Int { entries.count }

    /// The verified token for `digest`, if it is cached and still valid at `now`; a stale entry is dropped.
    ///
    /// - Parameter confirmKey: given the token and the key-set version its key was last confirmed in
    ///   (`unconfirmed` at first), the version in which the provider publishes that key now, or nil when it
    ///   no longer does.
    @inlinable
    public mutating func lookup(
        _ digest: Digest, now: Double, confirmKey: (VerifiedToken, _ confirmedIn: UInt64) -> UInt64?
    ) -> VerifiedToken? {
        guard let index = entries.index(forKey: digest) else { return nil }
        let entry = entries.values[index]
        guard now < entry.expiresAt, now >= entry.notBefore,
            let version = confirmKey(entry.token, entry.keySetVersion)
        else {
            entries.remove(at: index)
            return nil
        }
        if version != entry.keySetVersion { entries.values[index].keySetVersion = version }
        return entry.token
    }

    /// Remembers a token verified at `now` by a verifier that allowed `clockSkew` seconds.
    @inlinable
    public mutating func insert(_ token: VerifiedToken, for digest: Digest, now: Double, clockSkew: Double) {
        let exp = token.claims["exp"].flatMap(Self.seconds)
        let expiresAt = min(exp.map { $0 + clockSkew } ?? .infinity, now + maxAge)
        let notBefore = token.claims["nbf"].flatMap(Self.seconds).map { $0 - clockSkew } ?? -.infinity
        let entry = Entry(token: token, expiresAt: expiresAt, notBefore: notBefore)
        // A digest already cached keeps its place in the ring; only a new one takes a slot.
        if let index = entries.index(forKey: digest) {
            entries.values[index] = entry
            return
        }
        if ordered == capacity {
            // The ring is full: the oldest digest leaves it, and its entry with it if it is still there.
            if let evicted = order[oldest] { entries[evicted] = nil }
            order[oldest] = nil
            oldest = (oldest + 1) % capacity
            ordered -= 1
        }
        entries[digest] = entry
        order[(oldest + ordered) % capacity] = digest
        ordered += 1
    }

    public mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        order = Array(repeating: nil, count: capacity)
        oldest = 0
        ordered = 0
    }

    @usableFromInline
    static func seconds(_ value: JSONValue) -> Double? {
        guard case .number(let number) = value else { return nil }
        return number.doubleValue
    }
}
