import ArgumentParser
import Foundation
import Logging
import PortcullisCore
import PortcullisCrypto

/// Options shared by the commands that verify tokens.
struct PolicyOptions: ParsableArguments {
    @Option(help: "The issuer (iss) tokens must carry.")
    var issuer: String?

    @Option(name: .customLong("audience"), help: "An accepted audience (aud); repeat for several.")
    var audiences: [String] = []

    @Option(
        name: .customLong("algorithm"),
        help: "An allowed algorithm (e.g. RS256); repeat for several. Default: any the key accepts.")
    var algorithms: [String] = []

    @Option(help: "PostgREST's jwt-role-claim-key, e.g. '.role' or '$.realm_access.roles[0]'.")
    var roleClaimKey = ".role"

    @Option(help: "Clock skew tolerated on exp, nbf and iat, in seconds.")
    var clockSkew: Double = 30

    @Flag(help: "Accept tokens without exp.")
    var noRequireExp = false

    func policy(provider: String) throws -> VerificationPolicy {
        var allowed: Set<JWSAlgorithm>?
        if !algorithms.isEmpty {
            allowed = Set(
                try algorithms.map { name in
                    guard let algorithm = JWSAlgorithm(rawValue: name) else {
                        throw ValidationError("unknown algorithm \(name)")
                    }
                    return algorithm
                })
        }
        let roleClaim: ClaimPath
        do { roleClaim = try ClaimPath(roleClaimKey) } catch { throw ValidationError("\(error)") }
        return VerificationPolicy(
            provider: provider, algorithms: allowed,
            claims: ClaimRules(
                issuer: issuer, audiences: audiences, requireExpiry: !noRequireExp, clockSkew: clockSkew),
            roleClaim: roleClaim)
    }
}

/// Renders a decision as one line of JSON, the shape the proxy will log and answer with.
func decisionJSON(_ result: Result<VerifiedToken, TokenRefusal>) -> String {
    switch result {
    case .success(let token):
        var fields: [String: JSONValue] = [
            "decision": "allowed", "provider": .string(token.provider), "alg": .string(token.algorithm.rawValue),
            "claims": .object(token.claims),
        ]
        if let kid = token.keyID { fields["kid"] = .string(kid) }
        if let audience = token.audience { fields["audience"] = .string(audience) }
        if let role = token.role { fields["role"] = role }
        return JSONValue.object(fields).compactJSON
    case .failure(let refusal):
        return JSONValue.object([
            "decision": "refused", "error": .string(refusal.reason.rawValue), "message": .string(refusal.message),
        ]).compactJSON
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify one token (read from standard input) against a JWKS file and print the decision.",
        discussion: "Exit status: 0 allowed, 1 refused. The token is read from stdin so it never shows in ps.")

    @Option(help: "Path to a JWKS file ({\"keys\": [...]}).")
    var jwks: String

    @OptionGroup var policy: PolicyOptions

    func run() throws {
        var logger = Logger(label: "portcullis")
        logger.logLevel = .warning
        guard let data = FileManager.default.contents(atPath: jwks) else {
            throw ValidationError("cannot read \(jwks)")
        }
        let keys = try KeySetLoader.openSSL.load(jwks: Array(data), provider: "cli", logger: logger)
        let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let token = input.trimmingCharacters(in: .whitespacesAndNewlines)
        let verifier = TokenVerifier(policy: try policy.policy(provider: "cli"))
        let result = verifier.verify(Substring(token), with: keys, now: Date().timeIntervalSince1970)
        print(decisionJSON(result))
        if case .failure = result { throw ExitCode(1) }
    }
}
