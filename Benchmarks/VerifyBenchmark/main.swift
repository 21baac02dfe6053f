// Verifications per second, per algorithm, through the whole decision path (parse, header rules, key
// selection, signature, claims, role), single-threaded like `openssl speed`. Run by bench/verify.sh, which
// mints the tokens with an independent library and reports the ratio to OpenSSL's raw verify rate.
//
// usage: portcullis-verify-bench TOKENS.json [--seconds S] [--iterations N] [--only ALG] [--stage parse]
//   TOKENS.json is what Tests/Support/mint_tokens.py prints.
//   --iterations N runs exactly N verifications per algorithm (for allocation counting under valgrind).
//   --stage parse runs only the Swift side: structure, header, claims decoding and claim rules, no signature.

import Foundation
import PortcullisCore
import PortcullisCrypto

struct Options {
    var tokensPath = ""
    var seconds = 2.0
    var iterations: Int?
    var only: String?
    var parseOnly = false

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--seconds": seconds = Double(iterator.next() ?? "") ?? seconds
            case "--iterations": iterations = Int(iterator.next() ?? "")
            case "--only": only = iterator.next()
            case "--stage": parseOnly = iterator.next() == "parse"
            default: tokensPath = argument
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(1)
}

let options = Options(CommandLine.arguments)
guard !options.tokensPath.isEmpty, let data = FileManager.default.contents(atPath: options.tokensPath) else {
    fail("usage: portcullis-verify-bench TOKENS.json [--seconds S] [--iterations N] [--only ALG]")
}
let document: JSONValue
do { document = try JSONParser().parse(Array(data)) } catch { fail("tokens file: \(error)") }
guard case .number(let mintedAt)? = document["now"], let tokens = document["tokens"]?.arrayValue else {
    fail("tokens file has no \"now\" or \"tokens\"")
}

let loader = KeySetLoader(factory: OpenSSLVerifierFactory())
let asymmetric: KeySet
let symmetric: KeySet
do {
    asymmetric = try loader.load(jwks: document["asymmetric_jwks"] ?? .null).0
    symmetric = try loader.load(jwks: document["symmetric_jwks"] ?? .null).0
} catch { fail("JWKS: \(error)") }

let roleClaim: ClaimPath
do { roleClaim = try ClaimPath(".role") } catch { fail("role path: \(error)") }
let verifier = TokenVerifier(
    policy: VerificationPolicy(
        provider: "bench",
        claims: ClaimRules(issuer: "https://issuer.example/", audiences: ["portcullis-tests"]),
        roleClaim: roleClaim))
let now = mintedAt.doubleValue + 1

/// One decision, or with `--stage parse` only its Swift part.
func run(_ token: Substring, _ keys: KeySet) -> Bool {
    if options.parseOnly {
        guard let parsed = try? UnverifiedToken(token), let claims = try? parsed.claims() else { return false }
        return (try? verifier.policy.claims.check(claims, now: now)) != nil
    }
    if case .success = verifier.verify(token, with: keys, now: now) { return true }
    return false
}

print("algorithm  verifications/s  µs/verification")
for entry in tokens {
    guard let alg = entry["alg"]?.stringValue, let token = entry["token"]?.stringValue else { continue }
    if let only = options.only, only != alg { continue }
    let keys = alg.hasPrefix("HS") ? symmetric : asymmetric
    let substring = Substring(token)
    // Warm up, and prove the token verifies before timing it.
    for _ in 0..<20 {
        guard run(substring, keys) else { fail("\(alg): \(verifier.verify(substring, with: keys, now: now))") }
    }
    var count = 0
    let clock = ContinuousClock()
    let start = clock.now
    if let iterations = options.iterations {
        for _ in 0..<iterations { _ = run(substring, keys) }
        count = iterations
    } else {
        let deadline = start + .milliseconds(Int(options.seconds * 1000))
        while clock.now < deadline {
            for _ in 0..<64 { _ = run(substring, keys) }
            count += 64
        }
    }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(count) / seconds
    print(
        alg.padding(toLength: 10, withPad: " ", startingAt: 0), String(format: "%15.0f  %15.2f", rate, 1e6 / rate))
}
