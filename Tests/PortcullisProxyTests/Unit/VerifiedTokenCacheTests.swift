import PortcullisCore
import Testing

@testable import PortcullisProxy

/// The verified-token cache, with time passed in: a hit only while the token would still verify.
@Suite("Unit: VerifiedTokenCache")
struct VerifiedTokenCacheTests {
    static func token(
        exp: JSONValue? = nil, nbf: JSONValue? = nil, keyID: String? = "k1", sub: String = "u"
    )
        -> VerifiedToken
    {
        var claims: [String: JSONValue] = ["sub": .string(sub)]
        claims["exp"] = exp
        claims["nbf"] = nbf
        return UnitFixtures.token(claims, role: "r", keyID: keyID)
    }

    /// A key always held, in key-set version 1.
    static func always(_: VerifiedToken, confirmedIn _: UInt64) -> UInt64? { 1 }

    /// Whether a token inserted at `insertedAt` with `skew` is a hit at `now` (a fresh cache each time, since a
    /// miss drops the entry).
    static func isHit(
        _ token: VerifiedToken, insertedAt: Double, skew: Double, now: Double, maxAge: Double = 1e9
    ) -> Bool {
        var cache = VerifiedTokenCache<Int>(capacity: 4, maxAge: maxAge)
        cache.insert(token, for: 1, now: insertedAt, clockSkew: skew)
        return cache.lookup(1, now: now, confirmKey: Self.always) != nil
    }

    @Test("a hit before exp + skew; a miss at exp + skew and after, and the stale entry is dropped")
    func expiryWithSkew() {
        let token = Self.token(exp: 1000)
        var cache = VerifiedTokenCache<Int>(capacity: 4)
        cache.insert(token, for: 1, now: 900, clockSkew: 30)
        #expect(cache.lookup(1, now: 1029.999, confirmKey: Self.always)?.claims["sub"] == "u")
        #expect(cache.count == 1)
        #expect(cache.lookup(1, now: 1030, confirmKey: Self.always) == nil)
        #expect(cache.count == 0)
        #expect(!Self.isHit(token, insertedAt: 900, skew: 30, now: 5000))
        #expect(!Self.isHit(token, insertedAt: 900, skew: 0, now: 1000))
        #expect(Self.isHit(token, insertedAt: 900, skew: 0, now: 999.5))
    }

    @Test("nbf less the skew: a miss just before it, a hit from it on")
    func notBeforeWithSkew() {
        let token = Self.token(exp: 2000, nbf: 1000)
        #expect(!Self.isHit(token, insertedAt: 970, skew: 30, now: 969.999))
        #expect(Self.isHit(token, insertedAt: 970, skew: 30, now: 970))
        #expect(!Self.isHit(token, insertedAt: 1000, skew: 0, now: 999.999))
        #expect(Self.isHit(token, insertedAt: 1000, skew: 0, now: 1000))
    }

    @Test("fractional exp and nbf are honoured to the fraction")
    func fractionalDates() {
        let token = Self.token(exp: .number(JSONNumber(literal: "1000.5")), nbf: .number(JSONNumber(literal: "10.25")))
        #expect(Self.isHit(token, insertedAt: 500, skew: 0, now: 1000.4))
        #expect(!Self.isHit(token, insertedAt: 500, skew: 0, now: 1000.5))
        #expect(!Self.isHit(token, insertedAt: 500, skew: 0, now: 10.2))
        #expect(Self.isHit(token, insertedAt: 500, skew: 0, now: 10.25))
    }

    @Test("expired token replay: a cache hit never outlives what ClaimRules would accept at the same instant")
    func expiredTokenReplayAgreesWithClaimRules() throws {
        for skew in [0.0, 1, 30] {
            let rules = ClaimRules(requireExpiry: false, clockSkew: skew)
            let claims: [String: JSONValue] = ["exp": 1000, "nbf": 900]
            let token = Self.token(exp: 1000, nbf: 900)
            let insertedAt = 950.0
            // `check` returns the matched audience (nil here), so success is told apart from a refusal by catching.
            func accepts(_ now: Double) -> Bool {
                do {
                    _ = try rules.check(claims, now: now)
                    return true
                } catch {
                    return false
                }
            }
            #expect(accepts(insertedAt))
            for step in -80...80 {
                for now in [900 + Double(step) * 0.5, 1000 + Double(step) * 0.5] {
                    let accepted = accepts(now)
                    let hit = Self.isHit(token, insertedAt: insertedAt, skew: skew, now: now)
                    #expect(hit == accepted, "skew \(skew), now \(now)")
                }
            }
        }
    }

    @Test("maxAge bounds an entry whose exp is later, and a token without exp")
    func maxAgeBound() {
        for token in [Self.token(exp: 1_000_000), Self.token()] {
            #expect(Self.isHit(token, insertedAt: 100, skew: 30, now: 399.999, maxAge: 300))
            #expect(!Self.isHit(token, insertedAt: 100, skew: 30, now: 400, maxAge: 300))
        }
        // The earlier bound wins: exp + skew before the end of maxAge.
        #expect(!Self.isHit(Self.token(exp: 200), insertedAt: 100, skew: 30, now: 230, maxAge: 300))
    }

    @Test("revoked key: a token whose key is no longer published is a miss, and its entry is dropped")
    func revokedKeyDropsEntry() {
        var cache = VerifiedTokenCache<Int>(capacity: 4)
        cache.insert(Self.token(exp: 1000, keyID: "old"), for: 1, now: 0, clockSkew: 0)
        cache.insert(Self.token(exp: 1000, keyID: "kept"), for: 2, now: 0, clockSkew: 0)
        var asked: [String?] = []
        let current: (VerifiedToken, UInt64) -> UInt64? = { token, _ in
            asked.append(token.keyID)
            return token.keyID != "old" ? 1 : nil
        }
        #expect(cache.lookup(1, now: 10, confirmKey: current) == nil)
        #expect(asked == ["old"])
        #expect(cache.count == 1)
        // Even if the key comes back, the dropped entry does not.
        #expect(cache.lookup(1, now: 10, confirmKey: Self.always) == nil)
        #expect(cache.lookup(2, now: 10, confirmKey: current)?.keyID == "kept")
    }

    @Test("each entry remembers the key-set version its key was last confirmed in, from unconfirmed on")
    func entriesRememberTheirKeySetVersion() {
        var cache = VerifiedTokenCache<Int>(capacity: 4)
        cache.insert(Self.token(exp: 1000), for: 1, now: 0, clockSkew: 0)
        var seen: [UInt64] = []
        func confirmed(in version: UInt64) -> (VerifiedToken, UInt64) -> UInt64? {
            { _, confirmedIn in
                seen.append(confirmedIn)
                return version
            }
        }
        #expect(cache.lookup(1, now: 1, confirmKey: confirmed(in: 7)) != nil)
        #expect(cache.lookup(1, now: 1, confirmKey: confirmed(in: 7)) != nil)
        #expect(cache.lookup(1, now: 1, confirmKey: confirmed(in: 9)) != nil)
        #expect(cache.lookup(1, now: 1, confirmKey: confirmed(in: 9)) != nil)
        #expect(seen == [KeySetVersion.unconfirmed, 7, 7, 9])
    }

    @Test("capacity is never exceeded: a full cache evicts its oldest entry, one per insert")
    func capacityIsNeverExceeded() {
        var cache = VerifiedTokenCache<Int>(capacity: 64)
        let token = Self.token(exp: 1000)
        for digest in 0..<64 { cache.insert(token, for: digest, now: 0, clockSkew: 0) }
        #expect(cache.count == 64)
        cache.insert(token, for: 64, now: 0, clockSkew: 0)
        #expect(cache.count == 64)
        #expect(cache.lookup(0, now: 1, confirmKey: Self.always) == nil)
        #expect(cache.lookup(1, now: 1, confirmKey: Self.always) != nil)
        #expect(cache.lookup(64, now: 1, confirmKey: Self.always) != nil)
        for digest in 65..<5000 {
            cache.insert(token, for: digest, now: 0, clockSkew: 0)
            #expect(cache.count == 64)
        }
        // The 64 most recent are the ones kept.
        for digest in 4936..<5000 { #expect(cache.lookup(digest, now: 1, confirmKey: Self.always) != nil) }
        #expect(cache.lookup(4935, now: 1, confirmKey: Self.always) == nil)
    }

    @Test("cache flushing by a flood of new tokens: a cycle of distinct tokens below capacity keeps hitting")
    func cycleBelowCapacityAlwaysHits() {
        var cache = VerifiedTokenCache<Int>(capacity: 100)
        let token = Self.token(exp: 1000)
        for round in 0..<5 {
            for digest in 0..<90 {
                if round > 0 { #expect(cache.lookup(digest, now: 1, confirmKey: Self.always) != nil) }
                cache.insert(token, for: digest, now: 0, clockSkew: 0)
            }
        }
        #expect(cache.count == 90)
    }

    @Test("entries dropped as stale leave the ring in turn: re-inserted digests never push the count over")
    func staleEntriesAndReinsertion() {
        var cache = VerifiedTokenCache<Int>(capacity: 8)
        for round in 0..<50 {
            for digest in 0..<12 {
                // Every other round the token has expired by lookup time, so its entry is dropped first.
                let expired = round % 2 == 0
                _ = cache.lookup(digest, now: expired ? 2000 : 1, confirmKey: Self.always)
                cache.insert(Self.token(exp: 1000), for: digest, now: 0, clockSkew: 0)
                #expect(cache.count <= 8)
                #expect(cache.lookup(digest, now: 1, confirmKey: Self.always) != nil)
            }
        }
    }

    @Test("a small capacity evicts one entry at a time", arguments: [1, 2, 7])
    func smallCapacityEvictsAtLeastOne(capacity: Int) {
        var cache = VerifiedTokenCache<Int>(capacity: capacity)
        for digest in 0..<(capacity * 5) {
            cache.insert(Self.token(exp: 1000), for: digest, now: 0, clockSkew: 0)
            #expect(cache.count == min(digest + 1, capacity))
            #expect(cache.lookup(digest, now: 1, confirmKey: Self.always) != nil)
        }
    }

    @Test("re-inserting a cached digest into a full cache evicts nothing and replaces the entry")
    func reinsertDoesNotEvict() {
        var cache = VerifiedTokenCache<Int>(capacity: 16)
        for digest in 0..<16 { cache.insert(Self.token(exp: 1000, sub: "first"), for: digest, now: 0, clockSkew: 0) }
        for digest in 0..<16 { cache.insert(Self.token(exp: 2000, sub: "second"), for: digest, now: 0, clockSkew: 0) }
        #expect(cache.count == 16)
        for digest in 0..<16 {
            #expect(cache.lookup(digest, now: 100, confirmKey: Self.always)?.claims["sub"] == "second")
        }
    }

    @Test("removeAll empties the cache")
    func removeAllEmpties() {
        var cache = VerifiedTokenCache<Int>(capacity: 4)
        cache.insert(Self.token(exp: 1000), for: 1, now: 0, clockSkew: 0)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(cache.lookup(1, now: 1, confirmKey: Self.always) == nil)
    }
}

/// The cache key: SHA-256 of the token text.
@Suite("Unit: TokenDigest")
struct TokenDigestTests {
    @Test("equal token text gives equal digests and hashes, whatever string or slice it comes from")
    func equalTokensEqualDigests() {
        let whole = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"
        let framed = "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln, more"
        let slice = framed.dropFirst(7).prefix(whole.utf8.count)
        #expect(slice == whole[...])
        #expect(TokenDigest(whole[...])! == TokenDigest(slice)!)
        #expect(TokenDigest(whole[...])!.hashValue == TokenDigest(slice)!.hashValue)
    }

    @Test("different tokens give different digests, down to one byte, a prefix, or the empty token")
    func differentTokensDifferentDigests() {
        let tokens = ["a.b.c", "a.b.d", "a.b.c.", "a.b.", "", "A.b.c", "a.b.c\u{0}"]
        let digests = Set(tokens.map { TokenDigest($0[...])! })
        #expect(digests.count == tokens.count)
    }

    @Test("the digest is SHA-256 of the UTF-8 bytes (FIPS 180-2 test vector \"abc\")")
    func knownAnswerSHA256() {
        let expected: [UInt8] = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
            0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
        ]
        let words = expected.withUnsafeBytes { raw in
            (0..<4).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
        }
        let digest = TokenDigest("xabcx".dropFirst().dropLast())!
        #expect([digest.words.0, digest.words.1, digest.words.2, digest.words.3] == words)
    }

    @Test("as the cache key, a token repeated in a new string hits its entry")
    func digestKeysTheCache() {
        var cache = VerifiedTokenCache<TokenDigest>(capacity: 8)
        let token = UnitFixtures.token(["exp": 1000], role: "r")
        cache.insert(token, for: TokenDigest("h.p.s"[...])!, now: 0, clockSkew: 0)
        let again = String(["h", ".", "p", ".", "s"].joined())
        #expect(cache.lookup(TokenDigest(again[...])!, now: 1, confirmKey: VerifiedTokenCacheTests.always) != nil)
        #expect(cache.lookup(TokenDigest("h.p.t"[...])!, now: 1, confirmKey: VerifiedTokenCacheTests.always) == nil)
    }
}
