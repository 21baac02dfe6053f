import CoreMetrics
import NIOConcurrencyHelpers
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
    private let decisions = NIOLockedValueBox<[DecisionKey: CoreMetrics.Counter]>([:])
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
    private let reportedFetches = NIOLockedValueBox<[String: (successes: Int, failures: Int)]>([:])

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
        let counter = decisions.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(
                label: "portcullis_requests_total", dimensions: [("decision", decision), ("reason", reason)],
                factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// The time a token's verification took when it was not in the cache: a signature checked, or a refusal.
    func recordVerification(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        verification.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
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

    /// The figures read from state when `/metrics` is asked for, with their `# HELP` lines. Computed: the
    /// descriptor type is not `Sendable`, so it cannot be a stored static.
    private enum StateMetric {
        static var openConnections: MetricNameDescriptor {
            named("portcullis_open_connections", help: "Client connections open now.")
        }
        static var cacheEntries: MetricNameDescriptor {
            named(
                "portcullis_token_cache_entries", help: "Verified tokens held in the caches of all event loops.")
        }
        static var jwksKeys: MetricNameDescriptor {
            named("portcullis_jwks_keys", help: "Keys in the provider's key set now.")
        }
        static var jwksAge: MetricNameDescriptor {
            named(
                "portcullis_jwks_age_seconds",
                help: "Seconds since the provider's key set was last loaded; -1 before the first load.")
        }
        static var jwksFetches: MetricNameDescriptor {
            named(
                "portcullis_jwks_fetches_total", help: "Key set fetches per provider, by result.")
        }

        /// A full metric name as one descriptor component: the names are written out whole, as they are shown.
        private static func named(_ name: String, help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
    }

    /// The Prometheus text exposition, with the state-derived figures read now.
    public func exposition(authenticator: TokenAuthenticator, openConnections: Int) -> [UInt8] {
        registry.makeGauge(descriptor: StateMetric.openConnections).set(Double(openConnections))
        registry.makeGauge(descriptor: StateMetric.cacheEntries).set(Double(cacheEntries.load(ordering: .relaxed)))
        for source in authenticator.sources {
            let provider = source.configuration.name
            let statistics = source.statistics
            registry.makeGauge(descriptor: StateMetric.jwksKeys, labels: [("provider", provider)]).set(
                Double(statistics.keyCount))
            registry.makeGauge(descriptor: StateMetric.jwksAge, labels: [("provider", provider)]).set(
                source.keySetAge ?? -1)
            let previous = reportedFetches.withLockedValue { reported in
                defer { reported[provider] = (statistics.fetchSuccesses, statistics.fetchFailures) }
                return reported[provider] ?? (0, 0)
            }
            registry.makeCounter(
                descriptor: StateMetric.jwksFetches, labels: [("provider", provider), ("result", "success")]
            )
            .increment(by: Int64(statistics.fetchSuccesses - previous.successes))
            registry.makeCounter(
                descriptor: StateMetric.jwksFetches, labels: [("provider", provider), ("result", "failure")]
            )
            .increment(by: Int64(statistics.fetchFailures - previous.failures))
        }
        return registry.emitToBuffer()
    }
}
