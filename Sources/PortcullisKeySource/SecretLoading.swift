public import Foundation
import PortcullisCore

/// Reads an HMAC secret from the environment or a file, like PostgREST's `jwt-secret`
/// (and `jwt-secret-is-base64`).
public enum SecretLoading {
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// The secret in environment variable `name`.
    public static func fromEnvironment(
        _ name: String,
        base64: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(Failure) -> [UInt8] {
        guard let value = environment[name], !value.isEmpty else {
            throw Failure(message: "environment variable \(name) is not set")
        }
        return try decode(value, base64: base64, origin: "environment variable \(name)")
    }

    /// The secret in the file at `path`, without one trailing newline (as editors leave it).
    public static func fromFile(_ path: String, base64: Bool) throws(Failure) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(message: "cannot read secret file \(path)")
        }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasSuffix("\r\n") { text.removeLast(2) } else if text.hasSuffix("\n") { text.removeLast() }
        return try decode(text, base64: base64, origin: "secret file \(path)")
    }

    static func decode(_ text: String, base64: Bool, origin: String) throws(Failure) -> [UInt8] {
        let bytes: [UInt8]
        if base64 {
            // Either alphabet, padded or not: secrets are pasted from many tools.
            var normalized = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while normalized.count % 4 != 0 { normalized += "=" }
            guard let data = Data(base64Encoded: normalized) else { throw Failure(message: "\(origin) is not base64") }
            bytes = Array(data)
        } else {
            bytes = Array(text.utf8)
        }
        guard bytes.count >= JWK.minimumSecretBytes else {
            // The length only, never the secret.
            throw Failure(message: "\(origin) holds \(bytes.count * 8) bits; an HMAC secret needs at least 256")
        }
        return bytes
    }
}
