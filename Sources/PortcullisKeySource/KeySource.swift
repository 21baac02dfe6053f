import Foundation
public import Logging
import NIOConcurrencyHelpers
public import PortcullisCore
import PortcullisCrypto
import Synchronization

/// What a key source has done so far, for logs, readiness and (later) metrics.
public struct KeySourceStatistics: Sendable, Hashable {
    public var fetchSuccesses = 0
    public var fetchFailures = 0
    /// Keys in the set held now.
    public var keyCount = 0
    /// Seconds since the source started, at the last successful load.
    public var lastSuccess: Double?
    /// Why the last fetch failed, if it did.
    public var lastError: String?
}

/// One provider's keys: the thin I/O driver around `KeyRefreshStateMachine`.
///
/// The request path reads `keys` without waiting (a lock-protected snapshot). Fetches run as tasks on the
/// fetcher's own threads (libcurl, never an event loop); one timer task drives refreshes. A fetched
/// document replaces the held set only after it has parsed into at least one usable key.
public final class KeySource: Sendable {
    public let configuration: ProviderConfiguration
    private let fetcher: any DocumentFetcher
    private let logger: Logger
    private let origin = ContinuousClock.now
    private let state: NIOLockedValueBox<State>
    /// The version of the key set held now (`keySetVersion`).
    private let installedVersion = Atomic<UInt64>(KeySetVersion.unconfirmed)
    /// Where every source's versions come from: one counter for the process, so no two sets (of one source or
    /// of two, before and after a reload) ever share a version.
    private static let versions = Atomic<UInt64>(KeySetVersion.unconfirmed)

    struct State {
        var machine: KeyRefreshStateMachine
        var keys = KeySet.empty
        var statistics = KeySourceStatistics()
        var jwksURL: String?
        var discoveredIssuer: String?
        var waiters: [KeyRefreshStateMachine.WaiterID: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: KeyRefreshStateMachine.WaiterID = 0
        var timer: Task<Void, Never>?
        var stopped = false
        var notReadyReason = "keys not loaded yet"
        /// Set when the held set was dropped at max_stale, until the next good fetch.
        var pastMaxStale = false
    }

    public init(configuration: ProviderConfiguration, fetcher: any DocumentFetcher, logger: Logger) {
        self.configuration = configuration
        self.fetcher = fetcher
        self.logger = logger
        var initial = State(machine: KeyRefreshStateMachine(policy: configuration.refresh))
        if case .jwksURL(let url) = configuration.keySource { initial.jwksURL = url }
        self.state = NIOLockedValueBox(initial)
    }

    // MARK: Request path

    /// The keys held now. Empty until the first load, and after `maxStale` without a good fetch.
    public var keys: KeySet { state.withLockedValue { $0.keys } }

    /// Changes whenever the held key set is replaced (a refresh installs a new version even when the keys are
    /// the same), and is never the same for two sets: while it is unchanged, a key confirmed in the set is
    /// still in it. One atomic load, for the token cache's every hit.
    public var keySetVersion: UInt64 { installedVersion.load(ordering: .acquiring) }

    /// Replaces the held keys; the caller holds the lock.
    private func install(_ keys: KeySet, in state: inout State) {
        state.keys = keys
        installedVersion.store(Self.versions.wrappingAdd(1, ordering: .relaxed).newValue, ordering: .releasing)
    }

    /// Whether the provider holds a usable key set.
    public var isReady: Bool { state.withLockedValue { !$0.keys.isEmpty } }

    /// Why the provider is not ready (meaningful only when `isReady` is false).
    public var notReadyReason: String { state.withLockedValue { $0.notReadyReason } }

    public var statistics: KeySourceStatistics { state.withLockedValue { $0.statistics } }

    /// Seconds since the held key set was installed; nil before the first one.
    public var keySetAge: Double? {
        let installed = state.withLockedValue { $0.statistics.lastSuccess }
        return installed.map { now() - $0 }
    }

    /// The issuer tokens must carry: the configured one, else the one discovery found.
    public var effectiveIssuer: String? { configuration.issuer ?? state.withLockedValue { $0.discoveredIssuer } }

    /// Waits — at most `configuration.unknownKidWait` — for a refetch triggered by a token whose `kid` is not
    /// held, then returns whatever set is held. Refetches are single-flight and rate-limited.
    public func keysAfterRefetch() async -> KeySet {
        guard isRefreshable else { return keys }
        let waiter = state.withLockedValue { state -> KeyRefreshStateMachine.WaiterID in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let wait = configuration.unknownKidWait
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let actions = self.state.withLockedValue { state -> [KeyRefreshStateMachine.Action]? in
                        guard !state.stopped else { return nil }
                        state.waiters[waiter] = continuation
                        return state.machine.unknownKidSeen(waiter: waiter, now: self.now())
                    }
                    guard let actions else { return continuation.resume() }
                    self.perform(actions)
                }
            }
            group.addTask {
                try? await Task.sleep(for: wait)
                self.giveUp(waiter)
            }
            await group.next()
            group.cancelAll()
        }
        return keys
    }

    // MARK: Lifecycle

    /// Loads static keys at once, or starts fetching and refreshing.
    public func start() {
        switch configuration.keySource {
        case .inlineJWKS(let document):
            install(document: Array(document.compactJSON.utf8), origin: "inline JWKS")
        case .secret(let secret):
            let jwk: JSONValue = ["kty": "oct", "k": .string(Base64URL.encode(secret))]
            install(document: Array(JSONValue.object(["keys": [jwk]]).compactJSON.utf8), origin: "secret")
        case .jwksURL(let url), .discovery(issuer: let url):
            if url.lowercased().hasPrefix("http://") {
                // Allowed for local IdPs and tests, but keys fetched in clear text can be replaced in transit.
                logger.warning(
                    "keys are fetched over plain http: anyone on the path can substitute them; use https",
                    metadata: ["provider": "\(configuration.name)", "url": "\(url)"])
            }
            let actions = state.withLockedValue { $0.machine.start(now: now()) }
            perform(actions)
        }
    }

    /// Stops the timer and releases every waiting request.
    public func stop() {
        let (timer, waiters) = state.withLockedValue { state in
            state.stopped = true
            defer {
                state.waiters = [:]
                state.timer = nil
            }
            return (state.timer, Array(state.waiters.values))
        }
        timer?.cancel()
        waiters.forEach { $0.resume() }
    }

    var isRefreshable: Bool {
        switch configuration.keySource {
        case .jwksURL, .discovery: true
        case .inlineJWKS, .secret: false
        }
    }

    // MARK: Driving the state machine

    private func now() -> Double {
        let elapsed = ContinuousClock.now - origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private func perform(_ actions: [KeyRefreshStateMachine.Action]) {
        for action in actions {
            switch action {
            case .fetch:
                Task { await self.fetchOnce() }
            case .scheduleTimer(let deadline):
                let task = Task {
                    try? await Task.sleep(
                        until: self.origin + .milliseconds(Int64(deadline * 1000)), clock: .continuous)
                    guard !Task.isCancelled else { return }
                    let actions = self.state.withLockedValue { state -> [KeyRefreshStateMachine.Action] in
                        state.stopped ? [] : state.machine.timerFired(now: self.now())
                    }
                    self.perform(actions)
                }
                let previous = state.withLockedValue { state -> Task<Void, Never>? in
                    defer { state.timer = state.stopped ? nil : task }
                    return state.timer
                }
                previous?.cancel()
                if state.withLockedValue({ $0.stopped }) { task.cancel() }
            case .wakeWaiters(let ids):
                let continuations = state.withLockedValue { state in
                    ids.compactMap { state.waiters.removeValue(forKey: $0) }
                }
                continuations.forEach { $0.resume() }
            case .dropKeys:
                state.withLockedValue { state in
                    install(.empty, in: &state)
                    state.statistics.keyCount = 0
                    state.pastMaxStale = true
                    state.notReadyReason =
                        "no successful fetch for longer than max_stale"
                        + (state.statistics.lastError.map { " (last error: \($0))" } ?? "")
                }
                logger.error(
                    "JWKS past max_stale: failing closed",
                    metadata: ["provider": "\(configuration.name)", "max_stale": "\(configuration.refresh.maxStale)s"])
            case .setReady:
                break  // Readiness is derived from the held set.
            }
        }
    }

    private func giveUp(_ waiter: KeyRefreshStateMachine.WaiterID) {
        let continuation = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.machine.waiterGaveUp(waiter)
            return state.waiters.removeValue(forKey: waiter)
        }
        continuation?.resume()
    }

    /// One fetch: discovery first when needed, then the JWKS; validated completely before it is installed.
    private func fetchOnce() async {
        let outcome: Result<(count: Int, lifetime: Double?, status: Int), KeySourceError>
        do {
            let url = try await resolveJWKSURL()
            let response = try await get(url)
            guard (200..<300).contains(response.status) else { throw KeySourceError("HTTP \(response.status)") }
            let lifetime = CacheLifetime.seconds(
                cacheControl: response.cacheControl, expires: response.expires, date: response.date,
                now: Date().timeIntervalSince1970)
            let count = try load(document: response.body)
            outcome = .success((count, lifetime, response.status))
        } catch let error as KeySourceError {
            outcome = .failure(error)
        } catch {
            outcome = .failure(KeySourceError("\(error)"))
        }
        let actions: [KeyRefreshStateMachine.Action] = state.withLockedValue { state in
            guard !state.stopped else { return [] }
            switch outcome {
            case .success(let loaded):
                state.statistics.fetchSuccesses += 1
                state.statistics.lastSuccess = now()
                state.statistics.lastError = nil
                state.pastMaxStale = false
                return state.machine.fetchSucceeded(lifetime: loaded.lifetime, now: now())
            case .failure(let error):
                state.statistics.fetchFailures += 1
                state.statistics.lastError = error.message
                if state.keys.isEmpty {
                    state.notReadyReason =
                        state.pastMaxStale
                        ? "no successful fetch for longer than max_stale (last error: \(error.message))"
                        : "JWKS fetch failed: \(error.message)"
                }
                return state.machine.fetchFailed(now: now(), jitter: Double.random(in: 0..<1))
            }
        }
        switch outcome {
        case .success(let loaded):
            logger.info(
                "JWKS fetched",
                metadata: [
                    "provider": "\(configuration.name)", "status": "\(loaded.status)", "keys": "\(loaded.count)",
                    "lifetime": "\(loaded.lifetime.map { "\($0)s" } ?? "-")",
                ])
        case .failure(let error):
            logger.warning(
                "JWKS fetch failed; keeping the last good set",
                metadata: [
                    "provider": "\(configuration.name)", "error": "\(error.message)", "keys": "\(keys.keys.count)",
                ])
        }
        perform(actions)
    }

    private func resolveJWKSURL() async throws -> String {
        if let url = state.withLockedValue({ $0.jwksURL }) { return url }
        guard case .discovery(let issuer) = configuration.keySource else { throw KeySourceError("no JWKS URL") }
        let base = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        let response = try await get(base + "/.well-known/openid-configuration")
        guard response.status == 200 else { throw KeySourceError("discovery: HTTP \(response.status)") }
        let document: JSONValue
        do { document = try JSONParser().parse(response.body) } catch {
            throw KeySourceError("discovery document is not JSON: \(error)")
        }
        guard let jwksURI = document["jwks_uri"]?.stringValue,
            jwksURI.hasPrefix("https://") || jwksURI.hasPrefix("http://")
        else { throw KeySourceError("discovery document has no http(s) jwks_uri") }
        let discoveredIssuer = document["issuer"]?.stringValue
        state.withLockedValue { state in
            state.jwksURL = jwksURI
            state.discoveredIssuer = discoveredIssuer
        }
        logger.info(
            "OpenID discovery",
            metadata: [
                "provider": "\(configuration.name)", "jwks_uri": "\(jwksURI)", "issuer": "\(discoveredIssuer ?? "-")",
            ])
        return jwksURI
    }

    private func get(_ url: String) async throws -> FetchResponse {
        var request = FetchRequest(url: url)
        request.connectTimeout = configuration.fetch.connectTimeout
        request.timeout = configuration.fetch.timeout
        request.caFile = configuration.fetch.caFile
        request.maxBodyBytes = configuration.fetch.maxBodyBytes
        return try await fetcher.fetch(request)
    }

    /// Parses a JWKS and swaps it in when it holds at least one usable key. Returns the key count.
    @discardableResult
    private func load(document: [UInt8]) throws(KeySourceError) -> Int {
        let loaded: KeySet
        do {
            loaded = try KeySetLoader.openSSL.load(jwks: document, provider: configuration.name, logger: logger)
        } catch {
            throw KeySourceError(error.message)
        }
        guard !loaded.isEmpty else { throw KeySourceError("JWKS holds no usable key") }
        let removed = state.withLockedValue { state -> Set<String> in
            let removed = state.keys.keyIDs.subtracting(loaded.keyIDs)
            install(loaded, in: &state)
            state.statistics.keyCount = loaded.keys.count
            return removed
        }
        if !removed.isEmpty {
            logger.info(
                "keys left the JWKS and are no longer accepted",
                metadata: ["provider": "\(configuration.name)", "kids": "\(removed.sorted().joined(separator: ","))"])
        }
        return loaded.keys.count
    }

    /// Static sources: load once, log the outcome.
    private func install(document: [UInt8], origin: String) {
        do {
            let count = try load(document: document)
            state.withLockedValue { state in
                state.statistics.fetchSuccesses += 1
                state.statistics.lastSuccess = now()
            }
            logger.info(
                "keys loaded",
                metadata: ["provider": "\(configuration.name)", "source": "\(origin)", "keys": "\(count)"])
        } catch {
            state.withLockedValue { state in
                state.statistics.fetchFailures += 1
                state.statistics.lastError = error.message
                state.notReadyReason = "\(origin): \(error.message)"
            }
            logger.error(
                "keys not loaded", metadata: ["provider": "\(configuration.name)", "error": "\(error.message)"])
        }
    }
}

/// Why a fetch or load did not produce a usable key set.
struct KeySourceError: Error, Sendable {
    let message: String
    init(_ message: String) { self.message = message }
}
