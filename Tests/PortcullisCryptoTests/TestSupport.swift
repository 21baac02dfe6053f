import Foundation
import PortcullisCore
import PortcullisCrypto

/// Fixture files shipped with the tests (see Fixtures/README.md for their origin).
enum Fixtures {
    static func url(_ name: String, in folder: String) -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/\(folder)")
        else { fatalError("missing fixture \(folder)/\(name)") }
        return url
    }

    static func json(_ name: String, in folder: String) throws -> JSONValue {
        let data = try Data(contentsOf: url(name, in: folder))
        return try JSONParser(maxDepth: 64).parse(Array(data))
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            bytes.append(UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)!)
        }
        self = bytes
    }
}

extension JSONValue {
    /// Parses a JSON literal written in a test.
    init(parsing text: String) throws {
        self = try JSONParser().parse(text)
    }

    var intValue: Int? {
        guard case .number(let number) = self else { return nil }
        return Int(number.literal)
    }
}

/// Builds key sets from JWKS text with the real OpenSSL factory.
func keySet(_ jwks: String) throws -> (KeySet, [SkippedKey]) {
    try KeySetLoader(factory: OpenSSLVerifierFactory()).load(jwks: Array(jwks.utf8))
}

func keySet(_ jwks: JSONValue) throws -> (KeySet, [SkippedKey]) {
    try KeySetLoader(factory: OpenSSLVerifierFactory()).load(jwks: jwks)
}

/// Verifies only the JWS layer (for payloads that are not JWT claim sets).
func verifyJWS(_ token: String, with keys: KeySet) -> Result<VerificationKey, TokenRefusal> {
    Result { () throws(TokenRefusal) in
        try SignatureCheck.verify(UnverifiedToken(Substring(token)), with: keys)
    }
}
