import ArgumentParser
import Foundation
import PortcullisCore
import PortcullisCrypto

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a signing key for development: DIR/private.jwk and the public DIR/jwks.json.",
        discussion: """
            Prints a provider for config.json that trusts the new key. HS256 has no public half: then the secret \
            is written twice, as private.jwk and as secret.b64 (base64url), and the provider reads secret.b64. \
            Sign tokens with `portcullis token --key DIR/private.jwk`.
            """)

    @Option(
        name: .customLong("alg"),
        help: "ES256, RS256, EdDSA or HS256 (also ES384, ES512, PS*, RS384, RS512, HS384, HS512).")
    var algorithmName: String

    @Option(name: .customLong("kid"), help: "The key id. Default: the key's RFC 7638 thumbprint.")
    var keyID: String?

    @Option(name: .customLong("out"), help: "The folder to write to; made when missing.")
    var folder = "."

    @Flag(help: "Replace the key files already in the folder (tokens signed with the old key stop verifying).")
    var force = false

    func validate() throws {
        guard JWSAlgorithm(rawValue: algorithmName) != nil else {
            throw ValidationError(
                "unknown algorithm \(algorithmName); one of \(JWSAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        if let keyID, keyID.isEmpty { throw ValidationError("--kid is empty") }
    }

    func run() throws {
        let algorithm = JWSAlgorithm(rawValue: algorithmName)!
        let folderURL = URL(fileURLWithPath: folder).standardizedFileURL
        let privateURL = folderURL.appendingPathComponent("private.jwk")
        let secretURL = folderURL.appendingPathComponent("secret.b64")
        let jwksURL = folderURL.appendingPathComponent("jwks.json")
        let secretFiles = algorithm.family == .hmac ? [privateURL, secretURL] : [privateURL]
        // Checked before generating anything, so a refusal leaves the folder as it was.
        if !force, let existing = secretFiles.first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            throw ValidationError("\(existing.path) exists; --force replaces it")
        }

        let key: GeneratedKey
        do { key = try KeyGenerator.generate(algorithm, keyID: keyID) } catch {
            throw ValidationError("\(error)")
        }
        try FileManager.default.createDirectory(at: folderURL, withIntermediateDirectories: true)
        try Self.writePrivate(key.privateJWK.compactJSON + "\n", to: privateURL)
        note("wrote \(privateURL.path): the private key (\(algorithm.rawValue), kid \(key.keyID)), mode 0600")

        let provider: String
        if let publicJWK = key.publicJWK {
            try Data((JSONValue.object(["keys": [publicJWK]]).compactJSON + "\n").utf8).write(
                to: jwksURL, options: .atomic)
            note("wrote \(jwksURL.path): the public key set Portcullis verifies with")
            provider = """
                {"name": "local", "jwks_url": \(Self.json(jwksURL.absoluteString)), \
                "algorithms": [\(Self.json(algorithm.rawValue))]}
                """
        } else {
            // The secret both signs and verifies, so Portcullis must hold it itself; a JWKS holding it would
            // be a published secret.
            try Self.writePrivate((key.privateJWK["k"]?.stringValue ?? "") + "\n", to: secretURL)
            note("wrote \(secretURL.path): the same secret, base64url, mode 0600")
            note(
                "\(algorithm.rawValue) has no public key: Portcullis needs the secret itself, from secret_file "
                    + "(with secret_base64: true) or secret_env, as in this provider")
            provider = """
                {"name": "local", "secret_file": \(Self.json(secretURL.path)), "secret_base64": true, \
                "algorithms": [\(Self.json(algorithm.rawValue))]}
                """
        }
        note("a provider for config.json:")
        print(provider)
    }

    private func note(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A string as a JSON literal.
    private static func json(_ text: String) -> String { JSONValue.string(text).compactJSON }

    /// Created with mode 0600 from the start (never readable by others, not even for a moment), and never
    /// through a symbolic link planted at the path: what is there is removed (`run` has refused already
    /// unless --force), and O_EXCL refuses anything that appears meanwhile.
    private static func writePrivate(_ text: String, to url: URL) throws {
        unlink(url.path)
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ValidationError("cannot create \(url.path): \(String(cString: strerror(errno)))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }
}
