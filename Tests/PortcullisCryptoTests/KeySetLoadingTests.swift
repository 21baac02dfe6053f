import Foundation
import Logging
import PortcullisCore
import PortcullisCrypto
import PortcullisTestSupport
import Testing

@Suite("Key set loading")
struct KeySetLoadingTests {
    @Test("each skipped key is logged once with its provider, kid and reason; the rest of the set loads")
    func logsSkippedKeys() throws {
        let good = RFCExampleTests.examples.first { $0.name == "RFC7520-4.3-ES512" }!.jwk
        let jwks: JSONValue = [
            "keys": [
                good, ["kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"],
                ["kty": "EC", "kid": "enc", "use": "enc"],
            ]
        ]
        let logs = CapturedLogs()
        let keys = try KeySetLoader.openSSL.load(
            jwks: Array(jwks.compactJSON.utf8), provider: "idp", logger: logs.logger)
        #expect(keys.keyIDs == ["bilbo.baggins@hobbiton.example"])
        let records = logs.records
        #expect(records.count == 2)
        #expect(records.allSatisfy { $0.level == .warning && $0.metadata["provider"] == "idp" })
        #expect(records.map { $0.metadata["kid"] } == ["small", "enc"])
        #expect(records[0].metadata["reason"] == "RSA modulus of 17 bits is under 2048")
        #expect(records[1].metadata["reason"] == "\"use\" is \"enc\", not \"sig\"")
    }

    @Test("many threads verify with the same keys at once")
    func concurrentVerification() async throws {
        let examples = RFCExampleTests.examples.filter {
            ["RS256", "ES256", "EdDSA", "PS384"].contains($0.algorithm.rawValue)
        }
        let prepared = try examples.map { example in
            (example.token, try keySet(.object(["keys": .array([example.jwk])])).0)
        }
        let failures = await withTaskGroup(of: Int.self) { group in
            for task in 0..<16 {
                group.addTask {
                    var failures = 0
                    for round in 0..<50 {
                        let (token, keys) = prepared[(task + round) % prepared.count]
                        if (try? verifyJWS(token, with: keys).get()) == nil { failures += 1 }
                    }
                    return failures
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
    }
}
