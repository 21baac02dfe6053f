import Foundation
import PortcullisCore
import Testing

/// A verifier that needs no crypto: a signature is valid when it equals `tag` followed by the last byte
/// of the signing input. It counts its calls, so tests can see how many keys were tried.
final class FakeVerifier: SignatureVerifier, @unchecked Sendable {
    let tag: UInt8
    private let lock = NSLock()
    private var _calls = 0
    var calls: Int { lock.withLock { _calls } }

    init(tag: UInt8) { self.tag = tag }

    func isValidSignature(
        _ signature: UnsafeRawBufferPointer, of signingInput: UnsafeRawBufferPointer, algorithm: JWSAlgorithm
    ) -> Bool {
        lock.withLock { _calls += 1 }
        return Array(signature) == [tag, signingInput.last ?? 0]
    }

    /// Signs `header.payload` the way `isValidSignature` expects.
    static func sign(header: String, payload: String, tag: UInt8) -> String {
        let input = "\(Base64URL.encode(Array(header.utf8))).\(Base64URL.encode(Array(payload.utf8)))"
        return input + "." + Base64URL.encode([tag, input.utf8.last!])
    }
}

struct FakeFactory: SignatureVerifierFactory {
    func makeVerifier(for material: KeyMaterial) throws(KeyRejection) -> any SignatureVerifier {
        FakeVerifier(tag: 0)
    }
}

/// A 2048-bit RSA modulus (RFC 7515 A.2), for JWK rule tests that need a valid size.
let rsaModulus2048 =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"

@Suite("JWK rules")
struct JWKTests {
    func reject(_ json: JSONValue) -> String? {
        do {
            _ = try JWK(json: json)
            return nil
        } catch {
            return error.reason
        }
    }

    @Test("accepts well-formed keys of every type")
    func accepts() throws {
        let rsa = try JWK(json: ["kty": "RSA", "n": .string(rsaModulus2048), "e": "AQAB", "kid": "r", "alg": "RS256"])
        #expect(rsa.material.keyType == .rsa(modulusBits: 2048))
        #expect(rsa.algorithm == .rs256 && rsa.keyID == "r")
        let ec = try JWK(json: [
            "kty": "EC", "crv": "P-256", "x": .string(Base64URL.encode([UInt8](repeating: 1, count: 32))),
            "y": .string(Base64URL.encode([UInt8](repeating: 2, count: 32))), "use": "sig", "key_ops": ["verify"],
        ])
        #expect(ec.material.keyType == .ec(.p256))
        let okp = try JWK(json: [
            "kty": "OKP", "crv": "Ed25519", "x": .string(Base64URL.encode([UInt8](repeating: 3, count: 32))),
        ])
        #expect(okp.material.keyType == .ed25519)
        let oct = try JWK(json: ["kty": "oct", "k": .string(Base64URL.encode([UInt8](repeating: 4, count: 32)))])
        #expect(oct.material.keyType == .oct(byteCount: 32))
    }

    @Test("refuses keys that must not verify anything")
    func refuses() {
        let x32 = JSONValue.string(Base64URL.encode([UInt8](repeating: 1, count: 32)))
        let smallModulus = JSONValue.string(Base64URL.encode([0xC1] + [UInt8](repeating: 0x55, count: 126) + [0x01]))
        #expect(reject(["kty": "RSA", "n": smallModulus, "e": "AQAB"]) == "RSA modulus of 1024 bits is under 2048")
        #expect(
            reject(["kty": "RSA", "n": .string(rsaModulus2048), "e": "AQ"]) == "RSA public exponent is not acceptable")
        #expect(
            reject(["kty": "RSA", "n": .string(rsaModulus2048), "e": "AAI"]) == "RSA public exponent is not acceptable")
        #expect(
            reject(["kty": "RSA", "n": .string(rsaModulus2048), "e": "AQAB", "d": "AQAB"])
                == "contains private key material")
        #expect(reject(["kty": "EC", "crv": "P-256", "x": x32, "y": x32, "d": x32]) == "contains private key material")
        #expect(
            reject(["kty": "EC", "crv": "P-384", "x": x32, "y": x32]) == "EC coordinates are not 48 bytes for P-384")
        #expect(
            reject(["kty": "EC", "crv": "secp256k1", "x": x32, "y": x32]) == "curve \"secp256k1\" is not supported")
        #expect(reject(["kty": "OKP", "crv": "Ed448", "x": x32]) == "OKP curve \"Ed448\" is not supported")
        #expect(
            reject(["kty": "oct", "k": .string(Base64URL.encode([UInt8](repeating: 1, count: 31)))])
                == "HMAC secret of 248 bits is under 256")
        #expect(reject(["kty": "oct", "k": ""]) == "HMAC secret of 0 bits is under 256")
        #expect(reject(["kty": "oct", "k": x32, "use": "enc"]) == "\"use\" is \"enc\", not \"sig\"")
        #expect(reject(["kty": "oct", "k": x32, "key_ops": ["sign"]]) == "\"key_ops\" does not allow \"verify\"")
        #expect(
            reject(["kty": "oct", "k": x32, "alg": "A256GCM"])
                == "\"alg\" \"A256GCM\" is not a supported signature algorithm")
        #expect(reject(["kty": "oct", "k": x32, "alg": "HS512"]) == "\"alg\" HS512 does not fit a oct 256 key")
        #expect(
            reject(["kty": "EC", "crv": "P-256", "x": x32, "y": x32, "alg": "ES384"])
                == "\"alg\" ES384 does not fit a EC P-256 key")
        #expect(
            reject(["kty": "RSA", "n": .string(rsaModulus2048), "e": "AQAB", "alg": "HS256"])
                == "\"alg\" HS256 does not fit a RSA 2048 key")
        #expect(reject(["kty": "oct", "k": "AA=="]) == "\"k\" is not base64url")
        #expect(reject(["kty": "DSA"]) == "\"kty\" \"DSA\" is not supported")
        #expect(reject(["k": x32]) == "\"kty\" is missing")
        #expect(reject("x") == "not a JSON object")
    }

    @Test("the key type alone decides the algorithm family")
    func families() {
        #expect(KeyType.rsa(modulusBits: 2048).canVerify(.ps512))
        #expect(!KeyType.rsa(modulusBits: 2048).canVerify(.hs256))
        #expect(!KeyType.ec(.p256).canVerify(.es384))
        #expect(!KeyType.ed25519.canVerify(.hs256))
        #expect(KeyType.oct(byteCount: 48).canVerify(.hs384))
        #expect(!KeyType.oct(byteCount: 47).canVerify(.hs384))
        #expect(!KeyType.oct(byteCount: 64).canVerify(.rs256))
    }
}

@Suite("Key sets and key selection")
struct KeySelectionTests {
    static let secret = JSONValue.string(Base64URL.encode([UInt8](repeating: 9, count: 32)))

    func octKey(_ kid: String?, alg: String? = nil) -> JSONValue {
        var members: [String: JSONValue] = ["kty": "oct", "k": Self.secret]
        if let kid { members["kid"] = .string(kid) }
        if let alg { members["alg"] = .string(alg) }
        return .object(members)
    }

    func load(_ keys: [JSONValue]) throws -> (KeySet, [SkippedKey]) {
        try KeySetLoader(factory: FakeFactory()).load(jwks: ["keys": .array(keys)])
    }

    @Test("a bad key is skipped with its reason and never takes the set down")
    func skipsBadKeys() throws {
        let (keys, skipped) = try load([octKey("a"), ["kty": "oct", "k": "AA", "kid": "b"], octKey("c")])
        #expect(keys.keyIDs == ["a", "c"])
        #expect(skipped == [SkippedKey(index: 1, keyID: "b", reason: "HMAC secret of 8 bits is under 256")])
    }

    @Test("keys sharing a kid are all dropped, even when one of them is broken")
    func duplicateKid() throws {
        let (keys, skipped) = try load([octKey("a"), ["kty": "oct", "k": "AA", "kid": "a"], octKey("b")])
        #expect(keys.keyIDs == ["b"])
        #expect(skipped.map(\.index) == [0, 1])
    }

    @Test("a symmetric key beside public keys is dropped")
    func mixedSet() throws {
        let ec: JSONValue = [
            "kty": "EC", "crv": "P-256", "kid": "ec", "x": .string(Base64URL.encode([UInt8](repeating: 1, count: 32))),
            "y": .string(Base64URL.encode([UInt8](repeating: 2, count: 32))),
        ]
        let (keys, skipped) = try load([octKey("hs"), ec])
        #expect(keys.keyIDs == ["ec"])
        #expect(skipped.first?.reason == "symmetric key in a set of public keys")
    }

    @Test("refuses documents that are not a JWKS")
    func documents() {
        let loader = KeySetLoader(factory: FakeFactory())
        for text in ["[]", "{}", #"{"keys":{}}"#, "not json", #"{"keys":[],"keys":[]}"#] {
            #expect(throws: KeySetLoader.DocumentError.self) { try loader.load(jwks: Array(text.utf8)) }
        }
    }

    @Test("kid selects the key; an unknown kid is its own reason")
    func kidSelection() throws {
        let (keys, _) = try load([octKey("a"), octKey("b")])
        let good = FakeVerifier.sign(header: #"{"alg":"HS256","kid":"b"}"#, payload: "{}", tag: 0)
        #expect(try SignatureCheck.verify(UnverifiedToken(Substring(good)), with: keys).keyID == "b")
        let unknown = FakeVerifier.sign(header: #"{"alg":"HS256","kid":"zzz"}"#, payload: "{}", tag: 0)
        #expect(throws: TokenRefusal(.unknownKid, "No key matches the JWT's kid")) {
            try SignatureCheck.verify(UnverifiedToken(Substring(unknown)), with: keys)
        }
    }

    @Test("a token's kid may be verified by a key without one (an HMAC secret), never by a key with another kid")
    func kidlessKeys() throws {
        let (secretOnly, _) = try load([octKey(nil)])
        let token = FakeVerifier.sign(header: #"{"alg":"HS256","kid":"anything"}"#, payload: "{}", tag: 0)
        #expect(try SignatureCheck.verify(UnverifiedToken(Substring(token)), with: secretOnly).keyID == nil)
        let (mixed, _) = try load([octKey("a"), octKey(nil)])
        let calls = { mixed.keys.map { ($0.verifier as! FakeVerifier).calls } }
        _ = try SignatureCheck.verify(UnverifiedToken(Substring(token)), with: mixed)
        #expect(calls() == [0, 1])
        let forged = FakeVerifier.sign(header: #"{"alg":"HS256","kid":"anything"}"#, payload: "{}", tag: 5)
        #expect(throws: TokenRefusal(.badSignature, "JWT signature is invalid")) {
            try SignatureCheck.verify(UnverifiedToken(Substring(forged)), with: mixed)
        }
        #expect(calls() == [0, 2])
    }

    @Test("without kid, a bounded number of compatible keys are tried")
    func boundedTries() throws {
        let (keys, _) = try load((0..<10).map { octKey("k\($0)") })
        let forged = FakeVerifier.sign(header: #"{"alg":"HS256"}"#, payload: "{}", tag: 7)
        #expect(throws: TokenRefusal(.badSignature, "JWT signature is invalid")) {
            try SignatureCheck.verify(UnverifiedToken(Substring(forged)), with: keys)
        }
        let calls = keys.keys.map { ($0.verifier as! FakeVerifier).calls }.reduce(0, +)
        #expect(calls == TokenLimits().maxKeysWithoutKid)
    }

    @Test("without kid and without a compatible key: no_matching_key")
    func noCompatibleKey() throws {
        let (keys, _) = try load([octKey(nil)])
        let token = FakeVerifier.sign(header: #"{"alg":"RS256"}"#, payload: "{}", tag: 0)
        #expect(throws: TokenRefusal(.noMatchingKey, "No suitable key or wrong key type")) {
            try SignatureCheck.verify(UnverifiedToken(Substring(token)), with: keys)
        }
    }

    @Test("a JWK alg, and the provider's allow-list, restrict the algorithm")
    func algorithmRestrictions() throws {
        let (keys, _) = try load([octKey("a", alg: "HS256")])
        let hs384 = try UnverifiedToken(
            Substring(FakeVerifier.sign(header: #"{"alg":"HS384","kid":"a"}"#, payload: "{}", tag: 0)))
        #expect { try SignatureCheck.verify(hs384, with: keys) } throws: {
            ($0 as? TokenRefusal)?.reason == .algorithmNotAllowed
        }
        let hs256 = try UnverifiedToken(
            Substring(FakeVerifier.sign(header: #"{"alg":"HS256","kid":"a"}"#, payload: "{}", tag: 0)))
        #expect(throws: TokenRefusal(.algorithmNotAllowed, "Algorithm HS256 is not allowed")) {
            try SignatureCheck.verify(hs256, with: keys, allowedAlgorithms: [.rs256])
        }
    }
}

@Suite("ECDSA signature form")
struct ECDSASignatureTests {
    func der(_ raw: [UInt8], _ curve: EllipticCurve = .p256) -> [UInt8]? {
        raw.withUnsafeBytes { ECDSASignature.derEncoding(ofRaw: $0, curve: curve) }
    }

    @Test("r and s must lie in [1, n-1] (CVE-2022-21449)")
    func range() {
        let n = EllipticCurve.p256.order
        var nMinusOne = n
        nMinusOne[31] -= 1
        let one = [UInt8](repeating: 0, count: 31) + [1]
        let zero = [UInt8](repeating: 0, count: 32)
        #expect(der(zero + zero) == nil)
        #expect(der(zero + one) == nil)
        #expect(der(one + zero) == nil)
        #expect(der(n + one) == nil)
        #expect(der(one + n) == nil)
        #expect(der([UInt8](repeating: 0xFF, count: 64)) == nil)
        #expect(der(nMinusOne + one) != nil)
        #expect(der(one + nMinusOne) != nil)
    }

    @Test("only the exact raw length is accepted: DER, truncated and extended forms are refused")
    func length() {
        let one = [UInt8](repeating: 0, count: 31) + [1]
        #expect(der(one + one) != nil)
        #expect(der(Array((one + one).dropLast())) == nil)
        #expect(der(one + one + [0]) == nil)
        #expect(der([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]) == nil)
        #expect(der(one + one, .p384) == nil)
    }

    @Test("encodes minimal DER integers, with a zero byte before a set top bit")
    func encoding() {
        let r = [UInt8](repeating: 0, count: 31) + [0x80]
        let s = [UInt8](repeating: 0, count: 31) + [0x01]
        #expect(der(r + s) == [0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01])
        let big = [UInt8](repeating: 0x7F, count: 66)
        let encoded = der([0] + big.dropFirst() + [0] + big.dropFirst(), .p521)
        #expect(encoded?.prefix(3) == [0x30, 0x81, 0x86])
    }
}
