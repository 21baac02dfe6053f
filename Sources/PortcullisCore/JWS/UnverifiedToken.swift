/// Limits applied before any signature work, so that hostile input costs little.
public struct TokenLimits: Sendable, Hashable {
    /// The largest token accepted, in bytes (default 8 KiB).
    public var maxTokenBytes: Int
    /// The deepest JSON nesting accepted in the header and the payload.
    public var maxJSONDepth: Int
    /// How many compatible keys are tried for a token without `kid`.
    public var maxKeysWithoutKid: Int

    public init(maxTokenBytes: Int = 8 * 1024, maxJSONDepth: Int = 16, maxKeysWithoutKid: Int = 4) {
        self.maxTokenBytes = maxTokenBytes
        self.maxJSONDepth = maxJSONDepth
        self.maxKeysWithoutKid = maxKeysWithoutKid
    }
}

/// A compact JWS whose structure and header have been checked, but not its signature.
///
/// Nothing read from an `UnverifiedToken` may be trusted, except for choosing which keys to try.
public struct UnverifiedToken: Sendable {
    public let parts: TokenParts
    public let header: JOSEHeader
    let limits: TokenLimits

    public init(_ token: Substring, limits: TokenLimits = TokenLimits()) throws(TokenRefusal) {
        let parts = try TokenParts(token, maxBytes: limits.maxTokenBytes)
        let parser = JSONParser(maxDepth: limits.maxJSONDepth)
        let fields = try parts.withBytes { (bytes) throws(TokenRefusal) -> JOSEHeader.Fields in
            guard parts.header.count > 0 else { throw .malformed("JWT header is empty") }
            let decoded = try withBase64URLDecoded(bytes.slice(parts.header)) {
                (json) throws(TokenRefusal) -> JOSEHeader.Fields in
                var fields = JOSEHeader.Fields()
                let isObject: Bool
                do {
                    isObject = try parser.forEachMember(of: json) { name, value in fields.add(name, value) }
                } catch {
                    throw .malformed("JWT header is not valid JSON: \(error)")
                }
                guard isObject else { throw .malformed("JWT header is not a JSON object") }
                return fields
            }
            guard let decoded else { throw .malformed("JWT header is not valid base64url") }
            return decoded
        }
        self.parts = parts
        self.header = try JOSEHeader(fields)
        self.limits = limits
    }

    /// A JWS whose payload is not canonical base64url is malformed whatever its signature says. The JWT
    /// path gets this from decoding the claims; the JWS-only path checks it with this.
    func checkPayloadEncoding() throws(TokenRefusal) {
        let canonical = parts.withBytes { Base64URL.isCanonical($0.slice(parts.payload)) }
        guard canonical else { throw .malformed("JWT payload is not valid base64url") }
    }

    /// Decodes the payload as a JWT claims set: a JSON object with no duplicate member names.
    public func claims() throws(TokenRefusal) -> [String: JSONValue] {
        let parser = JSONParser(maxDepth: limits.maxJSONDepth)
        let value = try parts.withBytes { (bytes) throws(TokenRefusal) -> JSONValue in
            let decoded = try withBase64URLDecoded(bytes.slice(parts.payload)) {
                (json) throws(TokenRefusal) -> JSONValue in
                do { return try parser.parse(json) } catch {
                    throw .malformed("JWT claims are not valid JSON: \(error)")
                }
            }
            guard let decoded else { throw .malformed("JWT payload is not valid base64url") }
            return decoded
        }
        guard case .object(let claims) = value else { throw .malformed("JWT claims are not a JSON object") }
        return claims
    }

    /// The decoded payload bytes (for JWS whose payload is not a claims set).
    public func payloadBytes() throws(TokenRefusal) -> [UInt8] {
        let bytes = parts.withBytes { bytes in
            withBase64URLDecoded(bytes.slice(parts.payload)) { Array($0) }
        }
        guard let bytes else { throw .malformed("JWT payload is not valid base64url") }
        return bytes
    }
}
