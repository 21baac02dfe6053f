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

    public init(providers: [ProviderConfiguration], fetcher: any DocumentFetcher, logger: Logger) {
        self.sources = providers.map { KeySource(configuration: $0, fetcher: fetcher, logger: logger) }
        // A discovery provider without a configured issuer is routed as issuer-less: its issuer is only
        // known after the first fetch, and routing must not change under a running proxy.
        self.router = ProviderRouter(issuers: providers.map(\.issuer))
    }

    public func start() { sources.forEach { $0.start() } }

    public func stop() { sources.forEach { $0.stop() } }

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
        do {
            let limits = sources.first?.configuration.limits ?? TokenLimits()
            let parsed = try UnverifiedToken(token, limits: limits)
            var issuer: String?
            if router.needsIssuer {
                // Unverified, and used only to choose whose keys to try.
                issuer = try parsed.claims()["iss"]?.stringValue
            }
            var route = router.route(issuer: issuer, keyID: parsed.header.keyID) { index, kid in
                sources[index].keys.key(withID: kid) != nil
            }
            if case .refetch(let candidates) = route {
                await withTaskGroup(of: Void.self) { group in
                    for index in candidates { group.addTask { _ = await self.sources[index].keysAfterRefetch() } }
                }
                route = router.route(issuer: issuer, keyID: parsed.header.keyID) { index, kid in
                    sources[index].keys.key(withID: kid) != nil
                }
            }
            switch route {
            case .refused(let refusal): return .failure(refusal)
            case .refetch: return .failure(TokenRefusal(.unknownKid, "No key matches the JWT's kid"))
            case .provider(let index): return .success(try await verify(parsed, with: sources[index], now: now))
            }
        } catch {
            return .failure(error as? TokenRefusal ?? TokenRefusal(.malformed, "JWT could not be read"))
        }
    }

    private func verify(
        _ token: UnverifiedToken, with source: KeySource, now: Double
    ) async throws(TokenRefusal)
        -> VerifiedToken
    {
        let verifier = TokenVerifier(policy: source.configuration.policy(issuer: source.effectiveIssuer))
        var keys = source.keys
        if keys.isEmpty && !source.isReady && token.header.keyID == nil {
            throw TokenRefusal(.keysUnavailable, "The provider's keys are not available")
        }
        do {
            return try verifier.verify(token, with: keys, now: now)
        } catch  where error.reason == .unknownKid {
            // A key we have not seen: the IdP may have rotated. Wait (bounded) for one refetch, then decide.
            keys = await source.keysAfterRefetch()
            if keys.isEmpty { throw TokenRefusal(.keysUnavailable, "The provider's keys are not available") }
            return try verifier.verify(token, with: keys, now: now)
        }
    }
}
