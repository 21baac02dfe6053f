public import Logging
public import PortcullisCore

/// Readiness of one provider, for `/readyz`.
public struct ProviderReadiness: Sendable, Hashable {
    public let provider: String
    public let ready: Bool
    /// Why it is not ready; nil when it is.
    public let reason: String?
}

/// Decides tokens against several providers: routes each token to one provider, verifies it with that
/// provider's keys, and on an unknown `kid` waits (bounded) for one refetch before deciding.
public final class TokenAuthenticator: Sendable {
    public let sources: [KeySource]
    private let router: ProviderRouter
    /// The sources taken over from a previous authenticator (a reload): already started, and kept running.
    private let inherited: Set<ObjectIdentifier>

    /// - Parameter previous: on a reload, the running authenticator. A provider whose configuration did not
    ///   change keeps its key source (its keys, its refresh schedule): nothing is refetched.
    public init(
        providers: [ProviderConfiguration], fetcher: any DocumentFetcher, logger: Logger,
        reusing previous: TokenAuthenticator? = nil
    ) {
        var inherited: Set<ObjectIdentifier> = []
        self.sources = providers.map { configuration in
            if let kept = previous?.sources.first(where: { $0.configuration == configuration }) {
                inherited.insert(ObjectIdentifier(kept))
                return kept
            }
            return KeySource(configuration: configuration, fetcher: fetcher, logger: logger)
        }
        self.inherited = inherited
        // A discovery provider without a configured issuer is routed as issuer-less: its issuer is only
        // known after the first fetch, and routing must not change under a running proxy.
        self.router = ProviderRouter(issuers: providers.map(\.issuer))
    }

    /// Starts the sources this authenticator made (inherited ones are running already).
    public func start() {
        for source in sources where !inherited.contains(ObjectIdentifier(source)) { source.start() }
    }

    public func stop() { sources.forEach { $0.stop() } }

    /// After a reload to `successor`: stops the sources it did not take over.
    public func stop(keeping successor: TokenAuthenticator) {
        let kept = Set(successor.sources.map(ObjectIdentifier.init))
        for source in sources where !kept.contains(ObjectIdentifier(source)) { source.stop() }
    }

    /// Ready when every provider holds a usable key set.
    public var isReady: Bool { sources.allSatisfy(\.isReady) }

    public var readiness: [ProviderReadiness] {
        sources.map { source in
            let ready = source.isReady
            return ProviderReadiness(
                provider: source.configuration.name, ready: ready, reason: ready ? nil : source.notReadyReason)
        }
    }

    /// The decision for one token at `now` (seconds since the epoch).
    public func authenticate(_ token: Substring, now: Double) async -> Result<VerifiedToken, TokenRefusal> {
        switch authenticateWithoutWaiting(token, now: now) {
        case .decided(let result):
            return result
        case .afterRefetch(let candidates):
            await withTaskGroup(of: Void.self) { group in
                for index in candidates { group.addTask { _ = await self.sources[index].keysAfterRefetch() } }
            }
            // Decided now whatever the refetch brought: no second wait.
            if case .decided(let result) = authenticateWithoutWaiting(token, now: now, afterRefetch: true) {
                return result
            }
            return .failure(TokenRefusal(.unknownKid, "No key matches the JWT's kid"))
        }
    }

    /// The outcome of `authenticateWithoutWaiting`.
    public enum ImmediateOutcome: Sendable {
        /// Decided with the keys held now.
        case decided(Result<VerifiedToken, TokenRefusal>)
        /// The token names a key no candidate provider holds, and these providers may have it after a refetch:
        /// call `authenticate`, which waits (bounded) for one.
        case afterRefetch([Int])
    }

    /// The decision with the keys held now, never waiting: what an event loop can call inline. The common case
    /// (a known key) is decided here; only an unknown `kid` at a refreshable provider needs `authenticate`.
    public func authenticateWithoutWaiting(
        _ token: Substring, now: Double, afterRefetch: Bool = false
    ) -> ImmediateOutcome {
        do throws(TokenRefusal) {
            let limits = sources.first?.configuration.limits ?? TokenLimits()
            let parsed = try UnverifiedToken(token, limits: limits)
            var issuer: String?
            if router.needsIssuer {
                // Unverified, and used only to choose whose keys to try.
                issuer = try parsed.claims()["iss"]?.stringValue
            }
            let route = router.route(issuer: issuer, keyID: parsed.header.keyID) { index, kid in
                sources[index].keys.key(withID: kid) != nil
            }
            switch route {
            case .refused(let refusal):
                return .decided(.failure(refusal))
            case .refetch(let candidates):
                if afterRefetch { return .decided(.failure(TokenRefusal(.unknownKid, "No key matches the JWT's kid"))) }
                return .afterRefetch(candidates)
            case .provider(let index):
                return decide(parsed, at: index, now: now, afterRefetch: afterRefetch)
            }
        } catch {
            return .decided(.failure(error))
        }
    }

    /// The decision for a parsed token at one provider, with the keys it holds now.
    private func decide(_ token: UnverifiedToken, at index: Int, now: Double, afterRefetch: Bool) -> ImmediateOutcome {
        let source = sources[index]
        let verifier = TokenVerifier(policy: source.configuration.policy(issuer: source.effectiveIssuer))
        let keys = source.keys
        let unavailable = TokenRefusal(.keysUnavailable, "The provider's keys are not available")
        if keys.isEmpty && !source.isReady && (token.header.keyID == nil || afterRefetch) {
            return .decided(.failure(unavailable))
        }
        let result: Result<VerifiedToken, TokenRefusal> = Result { () throws(TokenRefusal) in
            try verifier.verify(token, with: keys, now: now)
        }
        guard case .failure(let refusal) = result, refusal.reason == .unknownKid else { return .decided(result) }
        // A key we have not seen: the IdP may have rotated. Wait (bounded) for one refetch, then decide.
        if !afterRefetch && source.isRefreshable { return .afterRefetch([index]) }
        return .decided(.failure(keys.isEmpty ? unavailable : refusal))
    }

    /// The version of `provider`'s key set now (`KeySource.keySetVersion`); nil for a provider it does not have.
    public func keySetVersion(provider: String) -> UInt64? {
        sources.first(where: { $0.configuration.name == provider })?.keySetVersion
    }

    /// Whether `provider` still publishes the key that verified a token: the key with `keyID`, or (for a token
    /// verified by a key without a kid) any key without one. A cached decision is dropped when this is false.
    public func stillHolds(provider: String, keyID: String?) -> Bool {
        guard let source = sources.first(where: { $0.configuration.name == provider }) else { return false }
        let keys = source.keys
        if let keyID { return keys.key(withID: keyID) != nil }
        return keys.keys.contains { $0.keyID == nil }
    }
}
