/// When and how often one provider's key set is fetched.
public struct RefreshPolicy: Sendable, Hashable {
    /// Background refresh period when the response sets no lifetime. Honoured as given (≥ 1 s).
    public var refreshInterval: Double
    /// Lower clamp for a lifetime from `Cache-Control: max-age` / `Expires`; also the refill period of
    /// the unknown-kid token bucket.
    public var minRefreshInterval: Double
    /// Upper clamp for a lifetime from the response.
    public var maxRefreshInterval: Double
    /// How long the last good set keeps serving while fetches fail. After that: fail closed, not ready.
    public var maxStale: Double
    /// Unknown-kid refetches allowed back to back before the bucket needs refilling.
    public var refetchBurst: Int
    /// First retry delay after a failure; doubles with each consecutive failure.
    public var backoffBase: Double
    /// Longest retry delay.
    public var backoffMax: Double

    public init(
        refreshInterval: Double = 300, minRefreshInterval: Double = 30, maxRefreshInterval: Double = 3600,
        maxStale: Double = 86_400, refetchBurst: Int = 3, backoffBase: Double = 1, backoffMax: Double = 300
    ) {
        self.refreshInterval = refreshInterval
        self.minRefreshInterval = minRefreshInterval
        self.maxRefreshInterval = maxRefreshInterval
        self.maxStale = maxStale
        self.refetchBurst = refetchBurst
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
    }
}

/// The refresh lifecycle of one provider's key set, as a pure state machine (in the manner of
/// async-http-client's connection pool): events in, actions out, time passed in. The driver performs the
/// actions — fetches, one timer, waking requests — and holds the key set itself.
///
/// - Fetch at start; refresh in the background every `refreshInterval`, or after the response's own
///   lifetime clamped to [`minRefreshInterval`, `maxRefreshInterval`]. The current set keeps serving while
///   a refresh runs, so no request waits for a scheduled refresh.
/// - A token with an unknown `kid` asks for a refetch. Refetches are single-flight (one in flight, any
///   number of waiters) and rate-limited by a token bucket (`refetchBurst`, refilled one per
///   `minRefreshInterval`), so a rotation is picked up at once but a flood of random kids costs a handful
///   of fetches.
/// - A failed fetch keeps the last good set for up to `maxStale`, retrying with exponential backoff and
///   jitter; past `maxStale` the set is dropped and the provider is not ready.
public struct KeyRefreshStateMachine: Sendable {
    /// Identifies a request waiting for a refetch.
    public typealias WaiterID = UInt64

    public enum Action: Sendable, Hashable {
        /// Start a fetch now.
        case fetch
        /// (Re)arm the single timer to fire at this time; replaces any earlier one.
        case scheduleTimer(at: Double)
        /// These waiting requests can be decided now, with whatever set is held.
        case wakeWaiters([WaiterID])
        /// The set is past `maxStale`: stop using it.
        case dropKeys
        /// Readiness changed.
        case setReady(Bool)
    }

    public let policy: RefreshPolicy

    /// Whether a fetch is in flight.
    public private(set) var isFetching = false
    /// When the last good set was installed.
    public private(set) var lastSuccess: Double?
    /// Consecutive failed fetches since the last success.
    public private(set) var consecutiveFailures = 0
    /// Whether a usable set is held.
    public private(set) var isReady = false
    /// When the timer will fire.
    public private(set) var timerDeadline: Double?
    /// Requests waiting for the fetch in flight.
    public private(set) var waiters: [WaiterID] = []
    /// Unknown-kid refetch tokens, refilled continuously.
    public private(set) var refetchTokens: Double
    private var tokensUpdatedAt: Double?
    private var hasKeys = false

    public init(policy: RefreshPolicy) {
        self.policy = policy
        self.refetchTokens = Double(policy.refetchBurst)
    }

    // MARK: Events

    /// The provider starts: fetch at once.
    public mutating func start(now: Double) -> [Action] {
        tokensUpdatedAt = now
        return beginFetch()
    }

    /// The timer fired: cut off a set past `maxStale`, then refresh unless a fetch is already running.
    public mutating func timerFired(now: Double) -> [Action] {
        timerDeadline = nil
        var actions = expireIfStale(now: now)
        if isFetching {
            // The fetch in flight will schedule what comes next.
            return actions
        }
        actions += beginFetch()
        return actions
    }

    /// The fetched document parsed into a usable set, which the driver has installed.
    /// - Parameter lifetime: from `Cache-Control: max-age` or `Expires`, when the response gave one.
    public mutating func fetchSucceeded(lifetime: Double?, now: Double) -> [Action] {
        isFetching = false
        hasKeys = true
        lastSuccess = now
        consecutiveFailures = 0
        var actions: [Action] = []
        if !isReady {
            isReady = true
            actions.append(.setReady(true))
        }
        let delay: Double
        if let lifetime {
            delay = min(max(lifetime, policy.minRefreshInterval), policy.maxRefreshInterval)
        } else {
            delay = max(policy.refreshInterval, 1)
        }
        actions.append(schedule(at: now + delay))
        actions += wakeAll()
        return actions
    }

    /// The fetch failed (transport error, HTTP error, not JSON, no usable key). The last good set stays.
    /// - Parameter jitter: a random number in [0, 1), injected so tests are deterministic.
    public mutating func fetchFailed(now: Double, jitter: Double) -> [Action] {
        isFetching = false
        consecutiveFailures += 1
        var actions = expireIfStale(now: now)
        let exponent = Double(min(consecutiveFailures - 1, 30))
        let ceiling = min(policy.backoffBase * pow2(exponent), policy.backoffMax)
        // "Equal jitter": between half and all of the backoff, so retries from many instances spread out
        // without ever retrying immediately.
        let delay = ceiling * (0.5 + 0.5 * min(max(jitter, 0), 1))
        var next = now + delay
        if hasKeys, let lastSuccess {
            // Wake up in time to cut the set off at exactly max-stale.
            next = min(next, max(lastSuccess + policy.maxStale, now))
        }
        actions.append(schedule(at: next))
        actions += wakeAll()
        return actions
    }

    /// A request holds a token whose `kid` is not in the set. Either it joins the fetch in flight, or a
    /// refetch starts for it, or — when the bucket is empty — it is woken at once and decided as is.
    public mutating func unknownKidSeen(waiter: WaiterID, now: Double) -> [Action] {
        refill(now: now)
        if isFetching {
            waiters.append(waiter)
            return []
        }
        guard refetchTokens >= 1 else { return [.wakeWaiters([waiter])] }
        refetchTokens -= 1
        waiters.append(waiter)
        return beginFetch()
    }

    /// A waiting request stopped waiting (its bound ran out).
    public mutating func waiterGaveUp(_ waiter: WaiterID) {
        waiters.removeAll { $0 == waiter }
    }

    // MARK: Helpers

    private mutating func beginFetch() -> [Action] {
        isFetching = true
        return [.fetch]
    }

    private mutating func schedule(at deadline: Double) -> Action {
        timerDeadline = deadline
        return .scheduleTimer(at: deadline)
    }

    private mutating func wakeAll() -> [Action] {
        guard !waiters.isEmpty else { return [] }
        defer { waiters = [] }
        return [.wakeWaiters(waiters)]
    }

    private mutating func expireIfStale(now: Double) -> [Action] {
        guard hasKeys, let lastSuccess, now >= lastSuccess + policy.maxStale else { return [] }
        hasKeys = false
        var actions: [Action] = [.dropKeys]
        if isReady {
            isReady = false
            actions.append(.setReady(false))
        }
        return actions
    }

    private mutating func refill(now: Double) {
        let last = tokensUpdatedAt ?? now
        let interval = max(policy.minRefreshInterval, 0.001)
        refetchTokens = min(Double(policy.refetchBurst), refetchTokens + max(now - last, 0) / interval)
        tokensUpdatedAt = now
    }

    private func pow2(_ exponent: Double) -> Double {
        Double(1 << Int(exponent))
    }
}
