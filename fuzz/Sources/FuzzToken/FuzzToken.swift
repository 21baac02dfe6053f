import Foundation
import PortcullisCore
import PortcullisCrypto

/// Any bytes as a token, verified against the keys of the RFC examples (RSA, EC, OKP and HMAC, loaded into
/// OpenSSL): refused or verified, never a trap. Only the genuine tokens themselves may verify: any other
/// input that verifies is a forgery.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzToken(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let token = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    if case .success = Fixture.verifier.verify(Substring(token), with: Fixture.keys, now: 0) {
        precondition(Fixture.genuine.contains(token), "a token that was never signed verified: \(token)")
    }
    return 0
}

enum Fixture {
    static let examples: [JSONValue] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../Tests/PortcullisCryptoTests/Fixtures/rfc-examples.json")
        guard let data = try? Data(contentsOf: file), let entries = (try? JSONParser().parse(Array(data)))?.arrayValue
        else { fatalError("cannot read \(file.path)") }
        return entries
    }()
    static let genuine = Set(examples.compactMap { $0["token"]?.stringValue })
    static let keys: KeySet = {
        let jwks = JSONValue.object(["keys": .array(examples.compactMap { $0["jwk"] })])
        guard let (keys, _) = try? KeySetLoader.openSSL.load(jwks: jwks) else { fatalError("keys do not load") }
        return keys
    }()
    static let verifier = TokenVerifier(
        policy: VerificationPolicy(provider: "fuzz", claims: ClaimRules(requireExpiry: false)))
}
