import CLibcrypto
import PortcullisCore
import PortcullisCrypto
import Testing

/// One test per known attack on JWT verifiers. Each names the attack it stops.
@Suite("Attacks")
struct AttackRegressionTests {
    static let examples = Dictionary(uniqueKeysWithValues: RFCExampleTests.examples.map { ($0.name, $0) })
    static var rs256: RFCExampleTests.Example { examples["RFC7515-A.2-RS256"]! }
    static var es256: RFCExampleTests.Example { examples["RFC7515-A.3-ES256"]! }

    /// An HS256 token over `header.payload`, signed with `secret` by OpenSSL directly.
    static func hs256(header: String, payload: String, secret: [UInt8]) -> String {
        let input = "\(Base64URL.encode(Array(header.utf8))).\(Base64URL.encode(Array(payload.utf8)))"
        var tag = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = HMAC(EVP_sha256(), secret, Int32(secret.count), input, input.utf8.count, &tag, &length)
        return input + "." + Base64URL.encode(tag)
    }

    static let secret = [UInt8](repeating: 0x42, count: 32)
    static let octJWKS = #"{"keys":[{"kty":"oct","kid":"hs","k":"\#(Base64URL.encode(secret))"}]}"#

    func refusal(_ token: String, _ keys: KeySet, policy: VerificationPolicy? = nil) -> TokenRefusal? {
        let verifier = TokenVerifier(
            policy: policy ?? VerificationPolicy(provider: "p", claims: ClaimRules(requireExpiry: false)))
        if case .failure(let refusal) = verifier.verify(Substring(token), with: keys, now: 1_300_819_000) {
            return refusal
        }
        return nil
    }

    func keys(_ example: RFCExampleTests.Example) throws -> KeySet {
        try keySet(.object(["keys": .array([example.jwk])])).0
    }

    @Test("alg none: unsecured tokens are refused, with or without a signature, in any letter case")
    func algNone() throws {
        let keys = try keySet(Self.octJWKS).0
        for alg in ["none", "None", "NONE"] {
            let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","kid":"hs"}"#.utf8))
            for token in ["\(header).e30.", "\(header).e30.AAAA", "\(header).e30"] {
                #expect(refusal(token, keys)?.reason != nil)
                #expect(refusal(token, keys)?.reason != .badSignature || token.hasSuffix("AAAA"))
            }
        }
    }

    @Test("algorithm confusion: an HS256 token keyed with the RSA public key is refused")
    func algorithmConfusion() throws {
        let keys = try keys(Self.rs256)
        // The attacker knows the public key, and uses its bytes (the JWK's n, or its JSON) as an HMAC secret.
        let modulus = try #require(Base64URL.decode(Self.rs256.jwk["n"]!.stringValue!))
        for secret in [modulus, Array(Self.rs256.jwk.compactJSON.utf8)] {
            let forged = Self.hs256(header: #"{"alg":"HS256"}"#, payload: #"{"role":"admin"}"#, secret: secret)
            #expect(refusal(forged, keys)?.reason == .noMatchingKey)
        }
        let (withKid, _) = try keySet(
            .object(["keys": .array([.object(Self.rs256.jwk.objectValue!.merging(["kid": "rsa"]) { $1 })])]))
        let forged = Self.hs256(header: #"{"alg":"HS256","kid":"rsa"}"#, payload: "{}", secret: modulus)
        #expect(refusal(forged, withKid)?.reason == .algorithmNotAllowed)
    }

    @Test("psychic signatures (CVE-2022-21449): r = s = 0, and r or s = n, are refused")
    func psychicSignature() throws {
        let keys = try keys(Self.es256)
        let signingInput = Self.es256.token.split(separator: ".").prefix(2).joined(separator: ".")
        let n = EllipticCurve.p256.order
        let zero = [UInt8](repeating: 0, count: 32)
        for signature in [zero + zero, n + n, zero + n, n + zero] {
            let token = signingInput + "." + Base64URL.encode(signature)
            #expect(refusal(token, keys)?.reason == .badSignature)
        }
    }

    @Test("DER-encoded ECDSA signatures are refused, even when OpenSSL would verify them")
    func derSignature() throws {
        let keys = try keys(Self.es256)
        #expect(refusal(Self.es256.token, keys) == nil)
        let parts = Self.es256.token.split(separator: ".")
        let raw = try #require(Base64URL.decode(parts[2]))
        let der = try #require(raw.withUnsafeBytes { ECDSASignature.derEncoding(ofRaw: $0, curve: .p256) })
        let token = "\(parts[0]).\(parts[1]).\(Base64URL.encode(der))"
        #expect(refusal(token, keys)?.reason == .badSignature)
    }

    @Test("kid traversal and injection: a kid is only ever a lookup key")
    func kidTraversal() throws {
        let keys = try keySet(Self.octJWKS).0
        for kid in ["../../../../../../dev/null", "/etc/passwd", "hs' OR '1'='1", "hs\u{0}", "HS", " hs", "hs\n"] {
            // Signed with the right secret: only the kid is wrong, and it must not resolve to anything.
            let token = Self.hs256(
                header: #"{"alg":"HS256","kid":\#(JSONValue.string(kid).compactJSON)}"#, payload: "{}",
                secret: Self.secret)
            #expect(refusal(token, keys)?.reason == .unknownKid)
        }
    }

    @Test("duplicate claims: a payload or header with a member twice is refused, even when validly signed")
    func duplicateClaims() throws {
        let keys = try keySet(Self.octJWKS).0
        for payload in [#"{"role":"user","role":"admin"}"#, #"{"role":"user","r\u006fle":"admin"}"#] {
            let token = Self.hs256(header: #"{"alg":"HS256","kid":"hs"}"#, payload: payload, secret: Self.secret)
            #expect(
                refusal(token, keys)
                    == TokenRefusal(.malformed, "JWT claims are not valid JSON: duplicate member name at byte 15"))
        }
        let header = Self.hs256(
            header: #"{"alg":"HS256","kid":"hs","kid":"other"}"#, payload: "{}", secret: Self.secret)
        #expect(refusal(header, keys)?.reason == .malformed)
    }

    @Test("header-supplied keys (jwk, jku, x5u, x5c) are never used")
    func headerSuppliedKeys() throws {
        let keys = try keySet(Self.octJWKS).0
        let attackerSecret = [UInt8](repeating: 0x66, count: 32)
        let attackerJWK = #"{"kty":"oct","k":"\#(Base64URL.encode(attackerSecret))"}"#
        for extra in [
            #""jwk":\#(attackerJWK)"#, #""jku":"https://attacker.example/jwks.json""#,
            #""x5u":"https://attacker.example/cert.pem""#, #""x5c":["MIIB"]"#,
        ] {
            let token = Self.hs256(
                header: #"{"alg":"HS256",\#(extra)}"#, payload: #"{"role":"admin"}"#, secret: attackerSecret)
            #expect(refusal(token, keys)?.reason == .badSignature)
        }
        // With only an RSA key held, the embedded HMAC key does not make HS256 possible.
        let rsaKeys = try self.keys(Self.rs256)
        let token = Self.hs256(header: #"{"alg":"HS256","jwk":\#(attackerJWK)}"#, payload: "{}", secret: attackerSecret)
        #expect(refusal(token, rsaKeys)?.reason == .noMatchingKey)
    }

    @Test(
        "truncated and extended signatures are refused",
        arguments: ["RFC7515-A.2-RS256", "RFC7515-A.3-ES256", "RFC7515-A.1-HS256", "RFC8037-A.4-EdDSA"])
    func truncatedOrExtended(_ name: String) throws {
        let example = try #require(Self.examples[name])
        let keys = try self.keys(example)
        let parts = example.token.split(separator: ".", omittingEmptySubsequences: false)
        let signature = try #require(Base64URL.decode(parts[2]))
        #expect((try? verifyJWS(example.token, with: keys).get()) != nil)
        for variant in [Array(signature.dropLast()), signature + [0], [0] + signature, Array(signature.prefix(1)), []] {
            let token = "\(parts[0]).\(parts[1]).\(Base64URL.encode(variant))"
            #expect(throws: TokenRefusal.self) { try verifyJWS(token, with: keys).get() }
        }
        // Characters appended to the encoded signature.
        for suffix in ["A", "AA", "=", " ", "."] {
            #expect(throws: TokenRefusal.self) { try verifyJWS(example.token + suffix, with: keys).get() }
        }
    }

    @Test("crit: a critical extension we do not implement is refused before the signature is checked")
    func crit() throws {
        let keys = try keySet(Self.octJWKS).0
        for header in [
            #"{"alg":"HS256","kid":"hs","crit":["http://example.com/x"],"http://example.com/x":1}"#,
            #"{"alg":"HS256","kid":"hs","b64":false,"crit":["b64"]}"#,
        ] {
            let token = Self.hs256(header: header, payload: "{}", secret: Self.secret)
            #expect(refusal(token, keys)?.reason == .unsupportedCriticalHeader)
        }
    }

    @Test("weak HMAC keys cannot verify longer algorithms: a 256-bit secret refuses HS512")
    func weakHMACKey() throws {
        let keys = try keySet(Self.octJWKS).0
        let header = Base64URL.encode(Array(#"{"alg":"HS512","kid":"hs"}"#.utf8))
        #expect(
            refusal("\(header).e30.\(Base64URL.encode([UInt8](repeating: 0, count: 64)))", keys)?.reason
                == .algorithmNotAllowed)
    }
}
