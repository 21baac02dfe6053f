import PortcullisCore
import Testing

@Suite("Provider routing")
struct ProviderRouterTests {
    @Test("by unverified iss when providers declare issuers")
    func byIssuer() {
        let router = ProviderRouter(issuers: ["https://a.example/", "https://b.example/"])
        #expect(router.needsIssuer)
        #expect(router.route(issuer: "https://b.example/", keyID: "k", holdsKey: { _, _ in false }) == .provider(1))
        #expect(
            router.route(issuer: "https://c.example/", keyID: "k", holdsKey: { _, _ in true })
                == .refused(TokenRefusal(.unknownProvider, "No provider accepts the JWT's issuer")))
        #expect(
            router.route(issuer: nil, keyID: nil, holdsKey: { _, _ in true })
                == .refused(TokenRefusal(.unknownProvider, "No provider accepts the JWT's issuer")))
    }

    @Test("two providers with the same issuer are ambiguous")
    func sameIssuer() {
        let router = ProviderRouter(issuers: ["https://a.example/", "https://a.example/"])
        guard
            case .refused(let refusal) = router.route(
                issuer: "https://a.example/", keyID: nil, holdsKey: { _, _ in true })
        else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.reason == .ambiguousProvider)
    }

    @Test("by kid across providers without issuers")
    func byKid() {
        let router = ProviderRouter(issuers: [nil, nil, "https://c.example/"])
        #expect(!ProviderRouter(issuers: [nil]).needsIssuer)
        let holds: (Int, String) -> Bool = { index, kid in (index == 0 && kid == "a") || (index == 1 && kid == "b") }
        #expect(router.route(issuer: nil, keyID: "b", holdsKey: holds) == .provider(1))
        #expect(router.route(issuer: "https://elsewhere/", keyID: "a", holdsKey: holds) == .provider(0))
        #expect(router.route(issuer: "https://c.example/", keyID: "a", holdsKey: holds) == .provider(2))
        #expect(router.route(issuer: nil, keyID: "new", holdsKey: holds) == .refetch([0, 1]))
        guard case .refused(let both) = router.route(issuer: nil, keyID: "a", holdsKey: { _, _ in true }),
            case .refused(let noKid) = router.route(issuer: nil, keyID: nil, holdsKey: holds)
        else {
            Issue.record("expected refusals")
            return
        }
        #expect(both.reason == .ambiguousProvider && noKid.reason == .ambiguousProvider)
    }

    @Test("a single provider without an issuer takes every token not claimed by issuer")
    func single() {
        let router = ProviderRouter(issuers: [nil])
        #expect(router.route(issuer: "anything", keyID: nil, holdsKey: { _, _ in false }) == .provider(0))
    }
}
