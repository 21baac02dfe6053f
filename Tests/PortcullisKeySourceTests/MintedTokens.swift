import Foundation
import PortcullisCore

/// Keys and tokens minted by the independent implementation (Tests/Support/mint_tokens.py, joserfc).
struct MintedTokens {
    let asymmetricJWKS: JSONValue
    let es256Token: String
    let hs256Token: String
    /// The HS256 secret, base64url-encoded (it is random bytes).
    let hs256SecretBase64URL: String

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func mint() throws -> MintedTokens {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repositoryRoot.appendingPathComponent("Tests/Support/mint_tokens.py").path, "--now",
            "\(Int(Date().timeIntervalSince1970))",
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let document = try JSONParser().parse(Array(data))
        func token(_ alg: String) -> String? {
            document["tokens"]?.arrayValue?.first { $0["alg"] == .string(alg) }?["token"]?.stringValue
        }
        let secret = document["symmetric_jwks"]?["keys"]?.arrayValue?.first { $0["alg"] == "HS256" }?["k"]?.stringValue
        guard let jwks = document["asymmetric_jwks"], let es256 = token("ES256"), let hs256 = token("HS256"),
            let secret
        else { throw CocoaError(.fileReadCorruptFile) }
        return MintedTokens(asymmetricJWKS: jwks, es256Token: es256, hs256Token: hs256, hs256SecretBase64URL: secret)
    }
}
