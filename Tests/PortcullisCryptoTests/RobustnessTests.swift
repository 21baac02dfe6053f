import PortcullisCore
import PortcullisCrypto
import PortcullisTestSupport
import Testing

/// Hostile input of every shape must be refused without crashing. A fixed-seed generator keeps every run
/// identical, so a failure is reproducible.
@Suite("Robustness")
struct RobustnessTests {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \u{0}é{}\"".utf8)

    static func mutate(_ token: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = token
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
            case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
            case 2 where !bytes.isEmpty: bytes.remove(at: position)
            case 3: bytes = Array(bytes.prefix(position))
            case 4 where !bytes.isEmpty: bytes[position] = alphabet.randomElement(using: &random)!
            case 5: bytes += bytes.suffix(Int.random(in: 0...20, using: &random))
            default: bytes.insert(UInt8(ascii: "."), at: position)
            }
        }
        return bytes
    }

    @Test("20,000 mutated genuine tokens: no crash, and none accepted unless unchanged")
    func mutatedTokens() throws {
        var random = SplitMix64(seed: 0x5EED)
        let examples = RFCExampleTests.examples
        let prepared = try examples.map { example in
            (Array(example.token.utf8), try keySet(.object(["keys": .array([example.jwk])])).0)
        }
        let verifier = TokenVerifier(
            policy: VerificationPolicy(provider: "fuzz", claims: ClaimRules(requireExpiry: false)))
        var accepted = 0
        var checked = 0
        for round in 0..<20_000 {
            let (original, keys) = prepared[round % prepared.count]
            let mutated = Self.mutate(original, &random)
            guard mutated != original else { continue }
            checked += 1
            let token = String(decoding: mutated, as: UTF8.self)
            if case .success = verifier.verify(Substring(token), with: keys, now: 0) {
                // Only a change that decodes to the same bytes could verify; strict base64url leaves none.
                accepted += 1
            }
            _ = try? SignatureCheck.verify(UnverifiedToken(Substring(token)), with: keys)
        }
        #expect(checked > 19_000)
        #expect(accepted == 0)
    }

    /// Edits aimed at a JWKS: JWK member names, key types, curves and algorithms, and base64url values
    /// of the lengths and bytes key material must be checked for (empty, one byte, all zeros, all ones,
    /// longer than any key, not base64url at all).
    static let jwkMutator = JSONMutator(
        keys: [
            "keys", "kty", "kid", "alg", "use", "key_ops", "crv", "n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y",
            "k", "x5c", "x5t", "x5t#S256", "oth",
        ],
        strings: [
            "", "RSA", "EC", "OKP", "oct", "P-256", "P-384", "P-521", "secp256k1", "Ed25519", "Ed448", "X25519",
            "RS256", "PS256", "ES256", "ES512", "EdDSA", "HS256", "none", "sig", "enc", "verify", "AQAB", "AQ", "AA",
            "Aw", "_w", "AQAB=", "////", "%%", "é", String(repeating: "A", count: 700),
            String(repeating: "_", count: 700), String(repeating: "A", count: 12_000),
            String(repeating: "_", count: 44), String(repeating: "A", count: 43),
        ],
        numbers: ["0", "1", "-1", "65537", "1e308"],
        specials: ["A", "_", "-", "=", "/", "+", ".", " ", "é"])

    @Test("5,000 mutated key sets: each key loads or is skipped, and tokens checked against them never crash")
    func mutatedKeySets() throws {
        var random = SplitMix64(seed: 0x4A_57_4B_53)
        let examples = RFCExampleTests.examples
        try #require(!examples.isEmpty)
        let original = JSONValue.object(["keys": .array(examples.map(\.jwk))])
        let verifier = TokenVerifier(
            policy: VerificationPolicy(provider: "fuzz", claims: ClaimRules(requireExpiry: false)))
        var loaded = 0
        for _ in 0..<5_000 {
            var jwks = original
            for _ in 0..<Int.random(in: 1...3, using: &random) { Self.jwkMutator.mutate(&jwks, using: &random) }
            guard let (keys, _) = try? keySet(jwks) else { continue }
            loaded += 1
            for example in examples {
                _ = verifier.verify(Substring(example.token), with: keys, now: 0)
            }
        }
        #expect(loaded > 1_000)
    }

    @Test("random bytes never crash the JSON parser")
    func randomJSON() {
        var random = SplitMix64(seed: 42)
        let pieces = Array("{}[]\",:0123456789-+.eEtrufalsn \\u00d8\u{1}é".utf8)
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in pieces.randomElement(using: &random)! }
            _ = try? JSONParser().parse(bytes)
        }
    }

    @Test("random claim paths never crash the compiler or the evaluator")
    func randomClaimPaths() throws {
        var random = SplitMix64(seed: 7)
        let pieces = Array("$.[]?@()'\"=!^*<>&|,-0123456789abroles searchmatch length\\u".unicodeScalars)
        let claims = try JSONParser().parse(#"{"a":{"b":[1,"x",{"c":null}]},"roles":["admin","user"],"role":"r"}"#)
        var compiled = 0
        for _ in 0..<20_000 {
            var source = String.UnicodeScalarView()
            source.append(Bool.random(using: &random) ? "$" : ".")
            for _ in 0..<Int.random(in: 0..<24, using: &random) { source.append(pieces.randomElement(using: &random)!) }
            guard let path = try? ClaimPath(String(source)) else { continue }
            compiled += 1
            _ = path.values(in: claims)
        }
        #expect(compiled > 0)
    }
}
