public import Foundation
public import PortcullisCore

/// The repository's root folder, for test support scripts and documents.
public let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Keys and tokens for every algorithm, minted at test time by an independent implementation
/// (Tests/Support/mint_tokens.py, Python joserfc).
public struct MintedTokens: Sendable {
    public struct Token: Sendable {
        public let algorithm: JWSAlgorithm
        public let keyID: String
        public let token: String
    }

    /// The `iat`/`nbf` of every token, in seconds since the epoch.
    public let now: Double
    public let asymmetricJWKS: JSONValue
    public let symmetricJWKS: JSONValue
    public let tokens: [Token]

    public func token(_ algorithm: JWSAlgorithm) -> String? {
        tokens.first { $0.algorithm == algorithm }?.token
    }

    /// The base64url `k` of the symmetric key for `algorithm` (the secret is random bytes).
    public func secretBase64URL(_ algorithm: JWSAlgorithm) -> String? {
        symmetricJWKS["keys"]?.arrayValue?.first { $0["alg"] == .string(algorithm.rawValue) }?["k"]?.stringValue
    }

    public struct MintFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs the minter (needs python3 with joserfc; `.ci/run` installs it).
    public static func mint() throws -> MintedTokens {
        let now = Int(Date().timeIntervalSince1970)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repositoryRoot.appendingPathComponent("Tests/Support/mint_tokens.py").path, "--now", "\(now)",
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw MintFailure(description: "mint_tokens.py failed (is python3 with joserfc installed?)")
        }
        let document = try JSONParser().parse(Array(data))
        guard let asymmetric = document["asymmetric_jwks"], let symmetric = document["symmetric_jwks"],
            let entries = document["tokens"]?.arrayValue
        else { throw MintFailure(description: "mint_tokens.py printed an unexpected document") }
        let tokens = entries.compactMap { entry -> Token? in
            guard let alg = entry["alg"]?.stringValue.flatMap(JWSAlgorithm.init(rawValue:)),
                let kid = entry["kid"]?.stringValue, let token = entry["token"]?.stringValue
            else { return nil }
            return Token(algorithm: alg, keyID: kid, token: token)
        }
        return MintedTokens(now: Double(now), asymmetricJWKS: asymmetric, symmetricJWKS: symmetric, tokens: tokens)
    }
}
