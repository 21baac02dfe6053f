import CoreMetrics
public import PortcullisKeySource
public import Prometheus
import Synchronization

/// What the proxy counts, through swift-metrics into a Prometheus registry of its own (not the global
/// `MetricsSystem`, so several proxies in one process, as in the tests, never mix their figures).
///
/// Per-request work is a lookup in a small table of counters and an atomic add; everything derived from
/// state (keys held, key-set age, connections, cache size) is read when `/metrics` is scraped.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let decisions = Mutex<[DecisionKey: CoreMetrics.Counter]>([:])
    /// The decisions nearly every request ends in, without the table's lock.
    private let allowedWithToken: CoreMetrics.Counter
    private let allowedAnonymous: CoreMetrics.Counter
    private let verification: CoreMetrics.Timer
    private let upstreamLatency: CoreMetrics.Timer
    private let upstreamErrors502: CoreMetrics.Counter
    private let upstreamErrors504: CoreMetrics.Counter
    private let cacheHits: CoreMetrics.Counter
    private let cacheMisses: CoreMetrics.Counter
    private let cacheEntries = Atomic<Int>(0)
    /// Fetch outcomes already reported, per provider, so the counters only ever add the difference.
    private let reportedFetches = Mutex<[String: (successes: Int, failures: Int)]>([:])

    private struct DecisionKey: Hashable {
        let decision: String
        let reason: String
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
            .seconds(10),
        ]
        self.factory = factory
        verification = CoreMetrics.Timer(label: "portcullis_verification_duration_seconds", factory: factory)
        upstreamLatency = CoreMetrics.Timer(label: "portcullis_upstream_duration_seconds", factory: factory)
        upstreamErrors502 = CoreMetrics.Counter(
            label: "portcullis_upstream_errors_total", dimensions: [("status", "502")], factory: factory)
        upstreamErrors504 = CoreMetrics.Counter(
            label: "portcullis_upstream_errors_total", dimensions: [("status", "504")], factory: factory)
        allowedWithToken = CoreMetrics.Counter(
            label: "portcullis_requests_total", dimensions: [("decision", "allowed"), ("reason", "ok")],
            factory: factory)
        allowedAnonymous = CoreMetrics.Counter(
            label: "portcullis_requests_total", dimensions: [("decision", "allowed"), ("reason", "anonymous")],
            factory: factory)
        cacheHits = CoreMetrics.Counter(label: "portcullis_token_cache_hits_total", factory: factory)
        cacheMisses = CoreMetrics.Counter(label: "portcullis_token_cache_misses_total", factory: factory)
    }

    /// One request decided: `decision` is `allowed`, `unauthorized`, `forbidden`, `bad_request` or
    /// `unavailable`; `reason` the error code (`ok` or `anonymous` when allowed).
    func recordDecision(_ decision: String, reason: String) {
        if decision == "allowed" {
            if reason == "ok" { return allowedWithToken.increment() }
            if reason == "anonymous" { return allowedAnonymous.increment() }
        }
        let key = DecisionKey(decision: decision, reason: reason)
        let counter = decisions.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(
                label: "portcullis_requests_total", dimensions: [("decision", decision), ("reason", reason)],
                factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    func recordVerification(nanoseconds: Int64) {
        verification.recordNanoseconds(nanoseconds)
    }

    func recordUpstream(nanoseconds: Int64) {
        upstreamLatency.recordNanoseconds(nanoseconds)
    }

    func recordUpstreamError(status: Int) {
        (status == 504 ? upstreamErrors504 : upstreamErrors502).increment()
    }

    func recordCache(hit: Bool) {
        (hit ? cacheHits : cacheMisses).increment()
    }

    func cacheSizeChanged(by delta: Int) {
        cacheEntries.add(delta, ordering: .relaxed)
    }

    /// The Prometheus text exposition, with the state-derived figures read now.
    public func exposition(authenticator: TokenAuthenticator, openConnections: Int) -> [UInt8] {
        registry.makeGauge(name: "portcullis_open_connections").set(Double(openConnections))
        registry.makeGauge(name: "portcullis_token_cache_entries").set(Double(cacheEntries.load(ordering: .relaxed)))
        for source in authenticator.sources {
            let provider = source.configuration.name
            let statistics = source.statistics
            registry.makeGauge(name: "portcullis_jwks_keys", labels: [("provider", provider)]).set(
                Double(statistics.keyCount))
            registry.makeGauge(name: "portcullis_jwks_age_seconds", labels: [("provider", provider)]).set(
                source.keySetAge ?? -1)
            let previous = reportedFetches.withLock { reported in
                defer { reported[provider] = (statistics.fetchSuccesses, statistics.fetchFailures) }
                return reported[provider] ?? (0, 0)
            }
            registry.makeCounter(
                name: "portcullis_jwks_fetches_total", labels: [("provider", provider), ("result", "success")]
            )
            .increment(by: Int64(statistics.fetchSuccesses - previous.successes))
            registry.makeCounter(
                name: "portcullis_jwks_fetches_total", labels: [("provider", provider), ("result", "failure")]
            )
            .increment(by: Int64(statistics.fetchFailures - previous.failures))
        }
        return registry.emitToBuffer()
    }
}
