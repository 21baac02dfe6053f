import Foundation
import PortcullisCore
import PortcullisTestSupport
import Testing

/// The built `portcullis` binary, started as a user starts it.
@Suite("Command line")
struct CommandLineTests {
    /// The executable sits beside the test bundle in the build folder.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("portcullis")
    }

    static func run(_ arguments: [String], stdin: String = "") throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("`portcullis demo` runs the proxy on config.json: two requests allowed, five refused, as RFC 6750 says")
    func demo() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the package first")
        let config = repositoryRoot.appendingPathComponent("config.json").path
        let (status, output) = try Self.run(["demo", "--config", config])
        #expect(status == 0)
        let lines = output.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("ALLOWED  200") }.count == 2)
        #expect(lines.filter { $0.hasPrefix("REFUSED  401") }.count == 4)
        #expect(lines.filter { $0.hasPrefix("REFUSED  403") }.count == 1)
        #expect(output.contains("the backend saw X-Postgres-Role: webuser"))
        // The forged role header never reaches the backend: the anonymous role does.
        #expect(output.contains("the backend saw X-Postgres-Role: web_anon"))
        #expect(output.contains(#"WWW-Authenticate: Bearer error="invalid_token""#))
    }

    @Test("`portcullis verify` reads the token from stdin; exit 0 allowed, 1 refused, 64 on a bad role path")
    func verify() throws {
        let minted = try MintedTokens.mint()
        let jwks = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID()).json")
        try Data(minted.asymmetricJWKS.compactJSON.utf8).write(to: jwks)
        defer { try? FileManager.default.removeItem(at: jwks) }
        let token = try #require(minted.token(.es256))
        let allowed = try Self.run(
            [
                "verify", "--jwks", jwks.path, "--audience", "portcullis-tests", "--role-claim-key",
                "$.realm_access.roles[1]",
            ],
            stdin: token + "\n")
        #expect(allowed.status == 0)
        let decision = try JSONParser().parse(allowed.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(decision["decision"] == "allowed" && decision["role"] == "writer")
        let refused = try Self.run(["verify", "--jwks", jwks.path, "--audience", "someone-else"], stdin: token)
        #expect(refused.status == 1)
        #expect(refused.output.contains(#""error":"audience_mismatch""#))
        // The token never appears in what the command prints about a refusal.
        #expect(!refused.output.contains(token.split(separator: ".")[2]))
        #expect(
            try Self.run(["verify", "--jwks", jwks.path, "--role-claim-key", ".roles["], stdin: token).status == 64)
    }

    @Test(
        "`keygen` writes a key pair and a provider `check` accepts; `token` signs with it; `verify` accepts the token",
        arguments: ["ES256", "HS256"])
    func keygenAndToken(_ algorithm: String) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the package first")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keygen-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let keygen = try Self.run(["keygen", "--alg", algorithm, "--out", folder.path])
        #expect(keygen.status == 0)
        let privateKey = folder.appendingPathComponent("private.jwk")
        let mode = try FileManager.default.attributesOfItem(atPath: privateKey.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let written = try Data(contentsOf: privateKey)
        let jwk = try JSONParser().parse(Array(written))
        #expect(jwk["alg"] == .string(algorithm) && jwk["use"] == "sig")

        // The printed provider is ready to paste: a configuration holding it passes `check`.
        let provider = try JSONParser().parse(keygen.output)
        let jwksFile = folder.appendingPathComponent("jwks.json")
        if algorithm == "HS256" {
            #expect(provider["secret_file"] == .string(folder.appendingPathComponent("secret.b64").path))
            #expect(!FileManager.default.fileExists(atPath: jwksFile.path))
            // Only for `verify`, which reads a JWKS file: the secret as a one-key set.
            try Data(JSONValue.object(["keys": [jwk]]).compactJSON.utf8).write(to: jwksFile)
        } else {
            #expect(provider["jwks_url"] == .string(jwksFile.absoluteString))
        }
        let config = folder.appendingPathComponent("config.json")
        let configuration: JSONValue = [
            "upstream": "http://127.0.0.1:3000", "providers": [provider],
            "rules": [["path": "/*", "auth": "required"]],
        ]
        try Data(configuration.compactJSON.utf8).write(to: config)
        #expect(try Self.run(["check", "--config", config.path]).status == 0)

        let token = try Self.run([
            "token", "--key", privateKey.path, "--claims", #"{"role":"api_user"}"#, "--ttl", "15m", "--aud", "demo",
        ])
        #expect(token.status == 0)
        let verified = try Self.run(["verify", "--jwks", jwksFile.path, "--audience", "demo"], stdin: token.output)
        #expect(verified.status == 0)
        let decision = try JSONParser().parse(verified.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(decision["decision"] == "allowed" && decision["role"] == "api_user")
        #expect(decision["alg"] == .string(algorithm) && decision["kid"] == jwk["kid"])
        guard case .number(let expiry)? = decision["claims"]?["exp"],
            case .number(let issued)? = decision["claims"]?["iat"]
        else {
            Issue.record("no exp or iat in \(verified.output)")
            return
        }
        #expect(Int(expiry.literal)! - Int(issued.literal)! == 900)

        // A second key never silently replaces the first.
        #expect(try Self.run(["keygen", "--alg", algorithm, "--out", folder.path]).status != 0)
        #expect(try Data(contentsOf: privateKey) == written)
    }
}
