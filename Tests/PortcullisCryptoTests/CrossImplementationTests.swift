import Foundation
import PortcullisCore
import PortcullisCrypto
import PortcullisTestSupport
import Testing

/// Tokens for every algorithm, minted at test time by an independent implementation (Python joserfc,
/// Tests/Support/mint_tokens.py), must verify; the same tokens with one bit flipped must not.
@Suite("Cross-implementation (joserfc)")
struct CrossImplementationTests {
    struct Minted: Sendable {
        let now: Double
        let asymmetric: KeySet
        let symmetric: KeySet
        let tokens: [(alg: JWSAlgorithm, kid: String, token: String)]
    }

    static func mint() throws -> Minted {
        let minted = try MintedTokens.mint()
        return Minted(
            now: minted.now, asymmetric: try keySet(minted.asymmetricJWKS).0,
            symmetric: try keySet(minted.symmetricJWKS).0,
            tokens: minted.tokens.map { ($0.algorithm, $0.keyID, $0.token) })
    }

    static let policy = VerificationPolicy(
        provider: "joserfc",
        claims: ClaimRules(issuer: "https://issuer.example/", audiences: ["portcullis-tests"]),
        roleClaim: try! ClaimPath(".role"))

    @Test("every algorithm verifies, with claims, audience and role")
    func verifies() throws {
        let minted = try Self.mint()
        #expect(Set(minted.tokens.map(\.alg)) == Set(JWSAlgorithm.allCases))
        let verifier = TokenVerifier(policy: Self.policy)
        for (alg, kid, token) in minted.tokens {
            let keys = alg.family == .hmac ? minted.symmetric : minted.asymmetric
            let result = verifier.verify(Substring(token), with: keys, now: minted.now + 1)
            let verified = try result.get()
            #expect(verified.algorithm == alg)
            #expect(verified.keyID == kid)
            #expect(verified.audience == "portcullis-tests")
            #expect(verified.claims["sub"] == .string("user-\(alg.rawValue)"))
            #expect(verified.role == .string("api_user"))
            // Keycloak-style array roles, through both grammars of the role-claim path.
            #expect(try ClaimPath("$.realm_access.roles[1]").firstValue(in: .object(verified.claims)) == "writer")
            #expect(
                try ClaimPath(".realm_access.roles[?(@ ^== \"rea\")]").firstValue(in: .object(verified.claims))
                    == "reader")
        }
    }

    @Test("one flipped bit in the signature or the payload is refused, for every algorithm")
    func tampered() throws {
        let minted = try Self.mint()
        let verifier = TokenVerifier(policy: Self.policy)
        for (alg, _, token) in minted.tokens {
            let keys = alg.family == .hmac ? minted.symmetric : minted.asymmetric
            let parts = token.split(separator: ".").map(String.init)
            let signature = try #require(Base64URL.decode(parts[2]))
            var payload = try #require(Base64URL.decode(parts[1]))
            for bit in [0, 7, signature.count * 4, signature.count * 8 - 1] {
                var flipped = signature
                flipped[bit / 8] ^= 1 << (bit % 8)
                let forged = "\(parts[0]).\(parts[1]).\(Base64URL.encode(flipped))"
                #expect(throws: TokenRefusal(.badSignature, "JWT signature is invalid"), "\(alg) bit \(bit)") {
                    try verifier.verify(Substring(forged), with: keys, now: minted.now + 1).get()
                }
            }
            // "api_user" → "api_usfr": still valid JSON, still a plausible claim set.
            let index = try #require(
                payload.firstIndex(
                    of: UInt8(ascii: "e"), after: payload.firstRange(of: Array("api_us".utf8))!.upperBound - 1))
            payload[index] ^= 0x03
            let forged = "\(parts[0]).\(Base64URL.encode(payload)).\(parts[2])"
            #expect(throws: TokenRefusal(.badSignature, "JWT signature is invalid"), "\(alg) payload") {
                try verifier.verify(Substring(forged), with: keys, now: minted.now + 1).get()
            }
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func firstIndex(of byte: UInt8, after start: Int) -> Int? {
        self[start...].firstIndex(of: byte)
    }
}
