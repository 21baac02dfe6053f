import ArgumentParser
import Foundation
import PortcullisCore
import PortcullisCrypto

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign a JWT with a private JWK (from `portcullis keygen`) and print it.",
        discussion: """
            The header is {"alg", "typ": "JWT", "kid"}. The payload is iat (now) and exp (now + --ttl), then the \
            members of --claims (which win, so '{"exp": 1}' makes an expired token), then --aud, --iss and --sub \
            (which win over --claims).
            """)

    @Option(name: .customLong("key"), help: "The private JWK file.")
    var keyPath: String

    @Option(help: #"The claims, a JSON object, e.g. '{"role":"api_user"}'."#)
    var claims = "{}"

    @Option(
        name: .customLong("ttl"),
        help: "How long the token is valid: \"15m\", \"30s\", \"1h\" or seconds. Default: 15m.")
    var lifetime: String?

    @Option(name: .customLong("aud"), help: "The audience (aud).")
    var audience: String?

    @Option(name: .customLong("iss"), help: "The issuer (iss).")
    var issuer: String?

    @Option(name: .customLong("sub"), help: "The subject (sub).")
    var subject: String?

    func run() throws {
        guard let data = FileManager.default.contents(atPath: keyPath) else {
            throw ValidationError("cannot read \(keyPath)")
        }
        let signer: JWKSigner
        do {
            let jwk = try JSONParser().parse(Array(data))
            if jwk["keys"] != nil {
                throw ValidationError("\(keyPath) is a key set; --key takes one private JWK (private.jwk)")
            }
            signer = try JWKSigner(privateJWK: jwk)
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(keyPath): \(error)")
        }
        let payload = try payload(now: Int(Date().timeIntervalSince1970))
        // The signed token is this command's output, on standard output for the caller to capture; it is never
        // logged, and the error below carries OpenSSL's reason, not key material.
        let token: String
        do { token = try signer.token(claims: payload) } catch { throw ValidationError("\(error)") }
        FileHandle.standardOutput.write(Data((token + "\n").utf8))
    }

    func payload(now: Int) throws -> [String: JSONValue] {
        let given: [String: JSONValue]
        do {
            guard case .object(let members) = try JSONParser().parse(claims) else {
                throw ValidationError("--claims is not a JSON object")
            }
            given = members
        } catch let error as JSONParseError {
            throw ValidationError("--claims is not valid JSON: \(error)")
        }
        if given["exp"] != nil, lifetime != nil {
            throw ValidationError("--claims sets exp and --ttl sets it too; leave one out")
        }
        guard let seconds = Self.seconds(lifetime ?? "15m") else {
            throw ValidationError("--ttl \(lifetime ?? "") is not a duration such as 15m, 30s, 1h or 900")
        }
        var payload: [String: JSONValue] = [
            "iat": .number(JSONNumber(literal: String(now))),
            "exp": .number(JSONNumber(literal: String(now + Int(seconds.rounded(.up))))),
        ]
        payload.merge(given) { _, claim in claim }
        if let audience { payload["aud"] = .string(audience) }
        if let issuer { payload["iss"] = .string(issuer) }
        if let subject { payload["sub"] = .string(subject) }
        return payload
    }

    /// A duration as config.json writes it; plain digits are seconds.
    static func seconds(_ text: String) -> Double? {
        let isInteger = !text.isEmpty && text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard
            let seconds = ConfigurationDuration.seconds(
                isInteger ? .number(JSONNumber(literal: text)) : .string(text)),
            seconds < Double(Int32.max)
        else { return nil }
        return seconds
    }
}
