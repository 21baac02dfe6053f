import PortcullisCore
import Testing

/// Builds compact tokens from JSON text, with any signature bytes.
func compact(header: String, payload: String, signature: [UInt8] = [1, 2, 3]) -> String {
    "\(Base64URL.encode(Array(header.utf8))).\(Base64URL.encode(Array(payload.utf8))).\(Base64URL.encode(signature))"
}

@Suite("Token parts and header")
struct TokenParsingTests {
    @Test(
        "counts parts like PostgREST",
        arguments: [
            ("a.b", "Expected 3 parts in JWT; got 2"), ("abc", "Expected 3 parts in JWT; got 1"),
            ("a.b.c.d", "Expected 3 parts in JWT; got 4"), ("a.b.c.d.e", "Encrypted JWTs (JWE) are not supported"),
            ("", "Empty JWT"),
        ])
    func partCounts(token: String, message: String) {
        #expect(throws: TokenRefusal(.malformed, message)) { try TokenParts(Substring(token), maxBytes: 8192) }
    }

    @Test("slices without re-encoding: the signing input is the bytes before the second dot")
    func slices() throws {
        let token = "aGVhZA.cGF5.c2ln"
        let parts = try TokenParts(Substring(token), maxBytes: 100)
        #expect(parts.signingInput == 0..<11)
        #expect(parts.signature == 12..<16)
    }

    @Test("bounds the size")
    func size() {
        let token = compact(header: #"{"alg":"HS256"}"#, payload: String(repeating: "x", count: 9000))
        #expect(throws: TokenRefusal(.malformed, "JWT is larger than 8192 bytes")) {
            try UnverifiedToken(Substring(token))
        }
        let limits = TokenLimits(maxTokenBytes: 16 * 1024)
        #expect(throws: Never.self) { try UnverifiedToken(Substring(token), limits: limits) }
    }

    @Test("refuses alg none in any letter case", arguments: ["none", "None", "NONE", "nOnE"])
    func algNone(_ alg: String) {
        let token = compact(header: #"{"alg":"\#(alg)"}"#, payload: "{}", signature: [])
        #expect(throws: TokenRefusal(.algorithmNotAllowed, "Unsecured JWTs (alg none) are not accepted")) {
            try UnverifiedToken(Substring(token))
        }
    }

    @Test("refuses unknown algorithms", arguments: ["HS1", "RS1", "ES256K", "hs256", "Ed25519X", ""])
    func unknownAlgorithm(_ alg: String) {
        let token = compact(header: #"{"alg":"\#(alg)"}"#, payload: "{}")
        #expect(throws: TokenRefusal(.algorithmNotAllowed, "Wrong or unsupported encoding algorithm")) {
            try UnverifiedToken(Substring(token))
        }
    }

    @Test(
        "refuses crit and b64:false",
        arguments: [
            #"{"alg":"HS256","crit":["exp"],"exp":1}"#, #"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            #"{"alg":"HS256","crit":[]}"#, #"{"alg":"HS256","b64":false}"#, #"{"alg":"HS256","crit":"x"}"#,
        ])
    func critical(_ header: String) {
        #expect {
            try UnverifiedToken(Substring(compact(header: header, payload: "{}")))
        } throws: { ($0 as? TokenRefusal)?.reason == .unsupportedCriticalHeader }
    }

    @Test(
        "refuses malformed headers",
        arguments: [
            "[]", #""HS256""#, "{}", #"{"alg":1}"#, #"{"alg":"HS256","kid":5}"#, #"{"alg":"HS256","alg":"HS256"}"#,
            #"{"alg":"HS256","typ":["JWT"]}"#, "{",
        ])
    func malformedHeader(_ header: String) {
        #expect {
            try UnverifiedToken(Substring(compact(header: header, payload: "{}")))
        } throws: { ($0 as? TokenRefusal)?.reason == .malformed }
    }

    @Test("reads alg, kid and typ; ignores key-carrying parameters")
    func header() throws {
        let token = compact(
            header: #"{"alg":"ES256","kid":"k1","typ":"JWT","jku":"https://evil.example/jwks","jwk":{"kty":"oct"}}"#,
            payload: "{}")
        let parsed = try UnverifiedToken(Substring(token))
        #expect(parsed.header == (try JOSEHeader(json: ["alg": "ES256", "kid": "k1", "typ": "JWT"])))
    }

    @Test("claims must be a JSON object without duplicates")
    func claims() throws {
        let good = try UnverifiedToken(Substring(compact(header: #"{"alg":"HS256"}"#, payload: #"{"a":[1]}"#)))
        #expect(try good.claims() == ["a": [1]])
        for payload in ["[1]", "1", #"{"a":1,"a":2}"#, "{", ""] {
            let token = try UnverifiedToken(Substring(compact(header: #"{"alg":"HS256"}"#, payload: payload)))
            #expect(throws: TokenRefusal.self) { try token.claims() }
        }
    }

    @Test("refuses a payload that is not canonical base64url: at the JWS layer, and when read as claims")
    func payloadEncoding() throws {
        let secret = JSONValue.string(Base64URL.encode([UInt8](repeating: 9, count: 32)))
        let (keys, _) = try KeySetLoader(factory: FakeFactory()).load(jwks: ["keys": [["kty": "oct", "k": secret]]])
        let header = Base64URL.encode(Array(#"{"alg":"HS256"}"#.utf8))
        for payload in ["AB", "e30=", "e 30", "e3?"] {
            let input = "\(header).\(payload)"
            // A signature the fake verifier accepts: only the payload's encoding is wrong.
            let token = try UnverifiedToken(Substring(input + "." + Base64URL.encode([0, input.utf8.last!])))
            let refusal = TokenRefusal(.malformed, "JWT payload is not valid base64url")
            #expect(throws: refusal) { try SignatureCheck.verify(token, with: keys) }
            #expect(throws: refusal) { try token.claims() }
        }
    }
}
