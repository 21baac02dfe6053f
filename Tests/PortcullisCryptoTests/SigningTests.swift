import Foundation
import PortcullisCore
import PortcullisCrypto
import PortcullisTestSupport
import Testing

/// Key generation and signing (`portcullis keygen`, `portcullis token`), checked against Portcullis's own
/// verifier, against an independent implementation (Python joserfc) in both directions, and against the
/// RFCs' deterministic examples.
@Suite("Signing and key generation")
struct SigningTests {
    static let policy = VerificationPolicy(
        provider: "signing", claims: ClaimRules(audiences: ["demo"]), roleClaim: try! ClaimPath(".role"))

    static func claims(now: Int) -> [String: JSONValue] {
        [
            "aud": "demo", "sub": "developer", "role": "api_user",
            "iat": .number(JSONNumber(literal: "\(now)")), "exp": .number(JSONNumber(literal: "\(now + 900)")),
        ]
    }

    /// The set a provider would be given: the public JWK, or for HMAC the secret itself.
    static func verificationJWKS(_ key: GeneratedKey) -> JSONValue {
        ["keys": [key.publicJWK ?? key.privateJWK]]
    }

    @Test("a generated key signs a token Portcullis verifies", arguments: JWSAlgorithm.allCases)
    func generateSignVerify(_ algorithm: JWSAlgorithm) throws {
        let key = try KeyGenerator.generate(algorithm)
        #expect(key.privateJWK["alg"] == .string(algorithm.rawValue))
        #expect(key.privateJWK["use"] == "sig")
        #expect(key.privateJWK["kid"] == .string(key.keyID))
        #expect(key.keyID == JWKThumbprint.sha256(of: key.privateJWK))
        if algorithm.family == .hmac {
            #expect(key.publicJWK == nil)
            #expect(Base64URL.decode(key.privateJWK["k"]?.stringValue ?? "")?.count == algorithm.digest!.byteCount)
        } else {
            let publicJWK = try #require(key.publicJWK)
            #expect(key.privateJWK["d"] != nil)
            for name in ["d", "p", "q", "dp", "dq", "qi"] { #expect(publicJWK[name] == nil, "\(name)") }
            #expect(try JWK(json: publicJWK).keyID == key.keyID)
        }
        if case .rsaPKCS1 = algorithm.family {
            let modulus = try #require(Base64URL.decode(key.privateJWK["n"]?.stringValue ?? ""))
            #expect(modulus.count * 8 == KeyGenerator.rsaBits && modulus[0] & 0x80 != 0)
        }

        let signer = try JWKSigner(privateJWK: key.privateJWK)
        let now = Int(Date().timeIntervalSince1970)
        let token = try signer.token(claims: Self.claims(now: now))
        let parts = token.split(separator: ".").map(String.init)
        let header = try JSONParser().parse(try #require(Base64URL.decode(parts[0])))
        #expect(header == ["alg": .string(algorithm.rawValue), "typ": "JWT", "kid": .string(key.keyID)])
        if case .ecdsa(let curve) = algorithm.family {
            #expect(Base64URL.decode(parts[2])?.count == 2 * curve.coordinateByteCount)
        }

        let (keys, skipped) = try KeySetLoader.openSSL.load(jwks: Self.verificationJWKS(key))
        #expect(skipped.isEmpty)
        let verified = try TokenVerifier(policy: Self.policy).verify(Substring(token), with: keys, now: Double(now))
            .get()
        #expect(verified.algorithm == algorithm)
        #expect(verified.keyID == key.keyID)
        #expect(verified.audience == "demo")
        #expect(verified.role == "api_user")
        #expect(verified.claims["exp"] == .number(JSONNumber(literal: "\(now + 900)")))
    }

    @Test("joserfc verifies tokens signed with generated keys, agrees on the kid, and signs with them too")
    func joserfcAcceptsGeneratedKeys() throws {
        let now = Int(Date().timeIntervalSince1970)
        var cases: [JSONValue] = []
        for algorithm in JWSAlgorithm.allCases {
            let key = try KeyGenerator.generate(algorithm)
            let token = try JWKSigner(privateJWK: key.privateJWK).token(claims: Self.claims(now: now))
            cases.append([
                "alg": .string(algorithm.rawValue), "token": .string(token), "jwks": Self.verificationJWKS(key),
                "private": key.privateJWK, "now": .number(JSONNumber(literal: "\(now)")),
            ])
        }
        let results = try #require(try Joserfc.run(Joserfc.verifyAndSign, input: .array(cases)).arrayValue)
        #expect(results.count == cases.count)
        for (entry, result) in zip(cases, results) {
            let algorithm = try #require(entry["alg"]?.stringValue.flatMap(JWSAlgorithm.init(rawValue:)))
            let kid = try #require(entry["private"]?["kid"])
            #expect(result["thumbprint"] == kid, "\(algorithm)")
            #expect(result["header"] == ["alg": .string(algorithm.rawValue), "typ": "JWT", "kid": kid])
            #expect(result["claims"]?["role"] == "api_user")
            // joserfc signed with the private JWK as written; the published half verifies that here.
            let (keys, _) = try KeySetLoader.openSSL.load(jwks: try #require(entry["jwks"]))
            let minted = try #require(result["token"]?.stringValue)
            let verified = try TokenVerifier(policy: Self.policy).verify(
                Substring(minted), with: keys, now: Double(now)
            ).get()
            #expect(verified.algorithm == algorithm && verified.role == "api_user")
        }
    }

    @Test("private keys made by joserfc sign tokens that both implementations verify")
    func signsWithJoserfcKeys() throws {
        let privateKeys = try #require(try Joserfc.run(Joserfc.generate, input: .array([])).arrayValue)
        #expect(privateKeys.count == JWSAlgorithm.allCases.count)
        let now = Int(Date().timeIntervalSince1970)
        var cases: [JSONValue] = []
        for privateJWK in privateKeys {
            let signer = try JWKSigner(privateJWK: privateJWK)
            #expect(signer.algorithm.rawValue == privateJWK["alg"]?.stringValue)
            let token = try signer.token(claims: Self.claims(now: now))
            let jwks: JSONValue = ["keys": [signer.publicJWK ?? privateJWK]]
            let (keys, skipped) = try KeySetLoader.openSSL.load(jwks: jwks)
            #expect(skipped.isEmpty)
            let verified = try TokenVerifier(policy: Self.policy).verify(Substring(token), with: keys, now: Double(now))
                .get()
            #expect(verified.algorithm == signer.algorithm && verified.keyID == signer.keyID)
            cases.append([
                "alg": .string(signer.algorithm.rawValue), "token": .string(token), "jwks": jwks,
                "private": privateJWK, "now": .number(JSONNumber(literal: "\(now)")),
            ])
        }
        let results = try #require(try Joserfc.run(Joserfc.verifyAndSign, input: .array(cases)).arrayValue)
        #expect(results.count == cases.count)
        for result in results { #expect(result["claims"]?["sub"] == "developer") }
    }

    @Test("deterministic signatures equal the RFCs' (RFC 7515 A.1 and RFC 7520 4.4 HS256, RFC 8037 A.4 EdDSA)")
    func knownAnswers() throws {
        let examples = try #require(try Fixtures.json("rfc-examples.json", in: ".").arrayValue)
        // RFC 8037 A.1's private key; the fixture holds only its public half (A.2).
        let ed25519Private = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
        var checked: [String] = []
        for example in examples {
            guard let name = example["name"]?.stringValue, case .object(var jwk)? = example["jwk"],
                let alg = example["alg"]?.stringValue, alg == "HS256" || alg == "EdDSA"
            else { continue }
            if alg == "EdDSA" { jwk["d"] = .string(ed25519Private) }
            let signer = try JWKSigner(privateJWK: .object(jwk))
            let token = try #require(example["token"]?.stringValue)
            let signingInput = token[..<token.lastIndex(of: ".")!]
            let signature = try signer.signature(of: Array(signingInput.utf8))
            #expect(Base64URL.encode(signature) == token.split(separator: ".").last.map(String.init), "\(name)")
            checked.append(name)
        }
        #expect(checked.count == 3)
    }

    @Test("the thumbprint is RFC 7638 §3.1's")
    func thumbprint() throws {
        let jwk = try JSONParser().parse(
            #"""
            {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
             "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
            """#)
        #expect(JWKThumbprint.sha256(of: jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        #expect(JWKThumbprint.sha256(of: ["kty": "RSA", "e": "AQAB"]) == nil)
        #expect(JWKThumbprint.sha256(of: ["kty": "unknown"]) == nil)
    }

    @Test(
        "a private half that does not belong to its public half is refused",
        arguments: [
            JWSAlgorithm.es256, .eddsa, .rs256,
        ])
    func mismatchedHalves(_ algorithm: JWSAlgorithm) throws {
        guard case .object(var first) = try KeyGenerator.generate(algorithm).privateJWK,
            case .object(let second) = try KeyGenerator.generate(algorithm).privateJWK
        else { throw SigningError("not objects") }
        first["d"] = second["d"]
        // RSA without its CRT members signs with d alone, so the swapped d is what signs.
        for name in ["p", "q", "dp", "dq", "qi"] { first[name] = nil }
        #expect(throws: SigningError("the private key does not belong to its public key")) {
            try JWKSigner(privateJWK: .object(first))
        }
    }

    @Test("keys that cannot sign are refused with the reason")
    func unusableKeys() throws {
        let key = try KeyGenerator.generate(.rs256)
        guard case .object(let members) = key.privateJWK else { throw SigningError("not an object") }
        func refusal(_ jwk: [String: JSONValue]) -> String? {
            do {
                _ = try JWKSigner(privateJWK: .object(jwk))
                return nil
            } catch { return error.message }
        }
        #expect(refusal(try #require(key.publicJWK?.objectValue)) == #"the key has no "d": not a private key"#)
        var partial = members
        partial["qi"] = nil
        #expect(refusal(partial) == "the key has some but not all of p, q, dp, dq, qi")
        #expect(refusal(members.merging(["key_ops": ["verify"]]) { $1 }) == #""key_ops" does not allow "sign""#)
        #expect(
            refusal(members.merging(["alg": "ES256"]) { $1 })
                == #"the key is not usable: "alg" ES256 does not fit a RSA 2048 key"#)
        #expect(
            refusal(["kty": "oct", "k": .string(Base64URL.encode([UInt8](repeating: 7, count: 16)))])
                == "the key is not usable: HMAC secret of 128 bits is under 256")
        #expect(refusal(members.merging(["d": "not base64!"]) { $1 }) == #""d" is not base64url"#)
    }
}

/// Runs Python joserfc (needs python3 with joserfc; `.ci/run` installs it) on a JSON document.
enum Joserfc {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// For each case {alg, token, jwks, private, now}: verifies `token` with `jwks` (alg pinned, exp, iat,
    /// aud and role checked) and signs a token of its own with `private`. Prints, per case, the decoded
    /// header and claims, the private key's RFC 7638 thumbprint, and the token it signed.
    static let verifyAndSign = """
        import json, sys, warnings
        warnings.simplefilter("ignore")  # joserfc warns about EdDSA and some RSA algorithms
        from joserfc import jwt
        from joserfc.jwk import KeySet, import_key
        from joserfc.jwt import JWTClaimsRegistry

        results = []
        for case in json.load(open(sys.argv[1])):
            alg = case["alg"]
            decoded = jwt.decode(case["token"], KeySet.import_key_set(case["jwks"]), algorithms=[alg])
            JWTClaimsRegistry(
                now=case["now"], aud={"essential": True, "value": "demo"},
                role={"essential": True, "value": "api_user"},
            ).validate(decoded.claims)
            private = import_key(case["private"])
            header = {"alg": alg, "kid": case["private"]["kid"], "typ": "JWT"}
            claims = {"aud": "demo", "role": "api_user", "iat": case["now"], "exp": case["now"] + 600}
            results.append({
                "header": decoded.header, "claims": decoded.claims, "thumbprint": private.thumbprint(),
                "token": jwt.encode(header, claims, private, algorithms=[alg]),
            })
        json.dump(results, sys.stdout)
        """

    /// Prints one private JWK (with alg, use and kid) for every JWS algorithm.
    static let generate = """
        import json, sys, warnings
        warnings.simplefilter("ignore")
        from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

        keys = []
        for alg, make, argument in [
            ("RS256", RSAKey, 2048), ("RS384", RSAKey, 2048), ("RS512", RSAKey, 2048),
            ("PS256", RSAKey, 2048), ("PS384", RSAKey, 2048), ("PS512", RSAKey, 2048),
            ("ES256", ECKey, "P-256"), ("ES384", ECKey, "P-384"), ("ES512", ECKey, "P-521"),
            ("EdDSA", OKPKey, "Ed25519"), ("HS256", OctKey, 256), ("HS384", OctKey, 384), ("HS512", OctKey, 512),
        ]:
            parameters = {"alg": alg, "use": "sig", "kid": "joserfc-" + alg}
            keys.append(make.generate_key(argument, parameters=parameters, private=True).as_dict(private=True))
        json.dump(keys, sys.stdout)
        """

    static func run(_ script: String, input: JSONValue) throws -> JSONValue {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joserfc-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let inputURL = folder.appendingPathComponent("input.json")
        let errorURL = folder.appendingPathComponent("stderr")
        try Data(input.compactJSON.utf8).write(to: inputURL)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, inputURL.path]
        let output = Pipe()
        process.standardOutput = output
        // A file, not a pipe: a long traceback cannot fill a pipe nobody reads and stall the script.
        process.standardError = try FileHandle(forWritingTo: errorURL)
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let detail = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
            throw Failure(description: "joserfc failed (is python3 with joserfc installed?):\n\(detail)")
        }
        return try JSONParser(maxDepth: 64).parse(Array(data))
    }
}
