import PortcullisCore
import Testing

@Suite("Key refresh state machine")
struct KeyRefreshStateMachineTests {
    typealias Action = KeyRefreshStateMachine.Action
    let policy = RefreshPolicy()  // 300 s refresh, clamps [30 s, 1 h], 24 h max-stale, burst 3

    /// A machine that has fetched once, successfully, at t = 0.
    func loaded(_ policy: RefreshPolicy? = nil) -> KeyRefreshStateMachine {
        var machine = KeyRefreshStateMachine(policy: policy ?? self.policy)
        _ = machine.start(now: 0)
        _ = machine.fetchSucceeded(lifetime: nil, now: 0)
        return machine
    }

    @Test("start fetches at once; the first success makes the provider ready and schedules a refresh")
    func startup() {
        var machine = KeyRefreshStateMachine(policy: policy)
        #expect(machine.start(now: 0) == [.fetch])
        #expect(machine.isFetching && !machine.isReady)
        #expect(machine.fetchSucceeded(lifetime: nil, now: 2) == [.setReady(true), .scheduleTimer(at: 302)])
        #expect(machine.isReady && !machine.isFetching)
    }

    @Test("refresh_interval is honoured as given, even under the minimum")
    func shortInterval() {
        var machine = KeyRefreshStateMachine(policy: RefreshPolicy(refreshInterval: 1))
        _ = machine.start(now: 0)
        #expect(machine.fetchSucceeded(lifetime: nil, now: 0) == [.setReady(true), .scheduleTimer(at: 1)])
    }

    @Test(
        "a response lifetime is clamped to [min, max]",
        arguments: [(10.0, 30.0), (30, 30), (60, 60), (3600, 3600), (7200, 3600), (0, 30)])
    func clamps(lifetime: Double, expected: Double) {
        var machine = loaded()
        _ = machine.timerFired(now: 300)
        #expect(machine.fetchSucceeded(lifetime: lifetime, now: 300) == [.scheduleTimer(at: 300 + expected)])
    }

    @Test("the timer refreshes; it does not start a second fetch while one is in flight")
    func timer() {
        var machine = loaded()
        #expect(machine.timerFired(now: 300) == [.fetch])
        #expect(machine.timerFired(now: 301) == [])
        #expect(machine.isFetching)
    }

    @Test("failures back off exponentially with jitter, up to backoffMax, and keep the last good set")
    func backoff() {
        var machine = loaded()
        _ = machine.timerFired(now: 300)
        // Equal jitter: the delay lies in [ceiling/2, ceiling].
        #expect(machine.fetchFailed(now: 300, jitter: 0) == [.scheduleTimer(at: 300.5)])
        _ = machine.timerFired(now: 300.5)
        #expect(machine.fetchFailed(now: 300.5, jitter: 1) == [.scheduleTimer(at: 302.5)])
        var now = 302.5
        var lastDelay = 0.0
        for _ in 0..<20 {
            _ = machine.timerFired(now: now)
            let actions = machine.fetchFailed(now: now, jitter: 0.999_999)
            guard case .scheduleTimer(let at)? = actions.first else {
                Issue.record("expected a retry, got \(actions)")
                return
            }
            lastDelay = at - now
            now = at
        }
        #expect(lastDelay <= policy.backoffMax && lastDelay > policy.backoffMax * 0.99)
        #expect(machine.isReady)
        #expect(machine.consecutiveFailures == 22)
        // A success resets the backoff.
        _ = machine.timerFired(now: now)
        #expect(machine.fetchSucceeded(lifetime: nil, now: now) == [.scheduleTimer(at: now + 300)])
        #expect(machine.consecutiveFailures == 0)
    }

    @Test("past max_stale the set is dropped and the provider is not ready; a later success restores it")
    func maxStale() {
        var machine = loaded(RefreshPolicy(maxStale: 100, backoffMax: 1000))
        // The 300 s refresh fires after max-stale (t = 100): the cut-off comes first, then the fetch.
        #expect(machine.timerFired(now: 300) == [.dropKeys, .setReady(false), .fetch])
        #expect(!machine.isReady)
        #expect(machine.fetchFailed(now: 300, jitter: 0) == [.scheduleTimer(at: 300.5)])
        _ = machine.timerFired(now: 300.5)
        #expect(machine.fetchSucceeded(lifetime: nil, now: 301) == [.setReady(true), .scheduleTimer(at: 601)])
    }

    @Test("the timer is armed to cut a failing provider off exactly at max_stale")
    func maxStaleTimer() {
        var machine = loaded(RefreshPolicy(maxStale: 100, backoffBase: 60, backoffMax: 60))
        _ = machine.timerFired(now: 50)
        #expect(machine.fetchFailed(now: 50, jitter: 1) == [.scheduleTimer(at: 100)])
        #expect(machine.timerFired(now: 100) == [.dropKeys, .setReady(false), .fetch])
    }

    @Test("an unknown kid starts a refetch and waits for it; others join it (single flight)")
    func singleFlight() {
        var machine = loaded()
        #expect(machine.unknownKidSeen(waiter: 1, now: 10) == [.fetch])
        for waiter in 2...100 as ClosedRange<UInt64> {
            #expect(machine.unknownKidSeen(waiter: waiter, now: 10) == [])
        }
        #expect(machine.refetchTokens == 2)
        let actions = machine.fetchSucceeded(lifetime: nil, now: 10.2)
        #expect(actions == [.scheduleTimer(at: 310.2), .wakeWaiters(Array(1...100))])
        #expect(machine.waiters.isEmpty)
    }

    @Test("waiters are woken by a failed refetch too, and decided with the set already held")
    func wakeOnFailure() {
        var machine = loaded()
        _ = machine.unknownKidSeen(waiter: 7, now: 10)
        #expect(machine.fetchFailed(now: 11, jitter: 0) == [.scheduleTimer(at: 11.5), .wakeWaiters([7])])
    }

    @Test("a waiter that gives up is forgotten")
    func giveUp() {
        var machine = loaded()
        _ = machine.unknownKidSeen(waiter: 1, now: 10)
        _ = machine.unknownKidSeen(waiter: 2, now: 10)
        machine.waiterGaveUp(1)
        #expect(machine.waiters == [2])
    }

    @Test("refetches are rate-limited: a burst of 3, then one per min_refresh_interval")
    func tokenBucket() {
        var machine = loaded()
        for index in 0..<3 {
            let now = 10 + Double(index)
            #expect(machine.unknownKidSeen(waiter: UInt64(index), now: now) == [.fetch])
            _ = machine.fetchSucceeded(lifetime: nil, now: now + 0.1)
        }
        // Bucket empty: decided at once, no fetch.
        #expect(machine.unknownKidSeen(waiter: 99, now: 13) == [.wakeWaiters([99])])
        // 30 s later one token is back.
        #expect(machine.unknownKidSeen(waiter: 100, now: 42.5) == [.fetch])
    }

    @Test("a flood of 10,000 random kids makes a handful of fetches")
    func flood() {
        var machine = loaded()
        var fetches = 0
        var inFlightUntil: Double?
        for index in 0..<10_000 {
            let now = 10 + Double(index) * 0.0001  // 10,000 requests in one second
            if let done = inFlightUntil, now >= done {
                _ = machine.fetchSucceeded(lifetime: nil, now: now)
                inFlightUntil = nil
            }
            if machine.unknownKidSeen(waiter: UInt64(index), now: now).contains(.fetch) {
                fetches += 1
                inFlightUntil = now + 0.05  // each fetch takes 50 ms
            }
        }
        #expect(fetches == 3)
    }

    @Test("a rotation published just after a scheduled refresh is picked up at once")
    func rotationAfterRefresh() {
        var machine = loaded()
        _ = machine.timerFired(now: 300)
        _ = machine.fetchSucceeded(lifetime: nil, now: 300.1)
        // The IdP rotates at 300.2; the first token with the new kid arrives at 300.3.
        #expect(machine.unknownKidSeen(waiter: 1, now: 300.3) == [.fetch])
    }

    @Test("failing from the start: not ready, retrying with backoff")
    func failingFromStart() {
        var machine = KeyRefreshStateMachine(policy: policy)
        _ = machine.start(now: 0)
        #expect(machine.fetchFailed(now: 1, jitter: 0) == [.scheduleTimer(at: 1.5)])
        #expect(!machine.isReady)
        #expect(machine.timerFired(now: 1.5) == [.fetch])
    }
}

@Suite("HTTP cache lifetime")
struct CacheLifetimeTests {
    @Test(
        "reads max-age, no-cache and Expires",
        arguments: [
            ("max-age=60", nil, nil, 60.0), ("public, max-age=\"120\", must-revalidate", nil, nil, 120),
            ("no-cache", nil, nil, 0), ("no-store, max-age=60", nil, nil, 0), ("private", nil, nil, nil),
            (nil, "Sun, 06 Nov 1994 08:50:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", 60),
            ("max-age=5", "Sun, 06 Nov 1994 08:50:37 GMT", nil, 5), (nil, "0", nil, 0), (nil, nil, nil, nil),
        ] as [(String?, String?, String?, Double?)])
    func lifetime(cacheControl: String?, expires: String?, date: String?, expected: Double?) {
        #expect(CacheLifetime.seconds(cacheControl: cacheControl, expires: expires, date: date, now: 0) == expected)
    }

    @Test("parses IMF-fixdate")
    func httpDate() {
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 25:49:37 GMT") == nil)
    }
}
