import PortcullisCore
import PortcullisCrypto
import Testing

/// The worked examples of RFC 7515 Appendix A, RFC 8037 Appendix A.4 and RFC 7520 §4, verified with the
/// RFCs' own keys (Fixtures/rfc-examples.json) and an injected clock.
@Suite("RFC examples")
struct RFCExampleTests {
    struct Example: CustomTestStringConvertible, Sendable {
        let name: String
        let token: String
        let jwk: JSONValue
        let algorithm: JWSAlgorithm
        let isJWT: Bool
        let expiry: Double?
        var testDescription: String { name }
    }

    static let examples: [Example] = {
        guard let entries = try? Fixtures.json("rfc-examples.json", in: ".").arrayValue else { return [] }
        return entries.map { entry in
            Example(
                name: entry["name"]!.stringValue!, token: entry["token"]!.stringValue!, jwk: entry["jwk"]!,
                algorithm: JWSAlgorithm(rawValue: entry["alg"]!.stringValue!)!,
                isJWT: entry["payload_is_jwt"] == .bool(true),
                expiry: entry["exp"].flatMap { if case .number(let n) = $0 { n.doubleValue } else { nil } })
        }
    }()

    @Test("every published example is present")
    func allPresent() {
        #expect(Self.examples.count == 9)
        #expect(Set(Self.examples.map(\.algorithm)) == [.hs256, .rs256, .es256, .es512, .eddsa, .ps384])
    }

    @Test("verifies with the RFC's key", arguments: examples)
    func verifies(_ example: Example) throws {
        let (keys, skipped) = try keySet(.object(["keys": .array([example.jwk])]))
        #expect(skipped.isEmpty)
        let key = try verifyJWS(example.token, with: keys).get()
        #expect(key.type.canVerify(example.algorithm))
    }

    @Test("one flipped signature bit is refused", arguments: examples)
    func tampered(_ example: Example) throws {
        let (keys, _) = try keySet(.object(["keys": .array([example.jwk])]))
        let parts = example.token.split(separator: ".", omittingEmptySubsequences: false)
        var signature = try #require(Base64URL.decode(parts[2]))
        signature[signature.count / 2] ^= 0x01
        let tampered = "\(parts[0]).\(parts[1]).\(Base64URL.encode(signature))"
        #expect(throws: TokenRefusal.self) { try verifyJWS(tampered, with: keys).get() }
    }

    @Test("JWT examples pass their claims just before exp and expire after it", arguments: examples.filter(\.isJWT))
    func claimsWithInjectedClock(_ example: Example) throws {
        let (keys, _) = try keySet(.object(["keys": .array([example.jwk])]))
        let expiry = try #require(example.expiry)
        let verifier = TokenVerifier(policy: VerificationPolicy(provider: "rfc", claims: ClaimRules(clockSkew: 0)))
        let verified = try verifier.verify(Substring(example.token), with: keys, now: expiry - 1).get()
        #expect(verified.claims["iss"] == "joe")
        #expect(verified.claims["http://example.com/is_root"] == .bool(true))
        #expect(throws: TokenRefusal(.expired, "JWT expired")) {
            try verifier.verify(Substring(example.token), with: keys, now: expiry).get()
        }
    }
}
