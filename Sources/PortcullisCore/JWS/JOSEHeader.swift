/// The protected header of a JWS, with the rules Portcullis enforces on it.
public struct JOSEHeader: Sendable, Hashable {
    /// The signature algorithm. `none` (in any letter case) never gets this far.
    public let algorithm: JWSAlgorithm
    /// The key id the token names, if any. Only ever compared with the ids of keys we hold; never used as
    /// a path, URL or query.
    public let keyID: String?
    /// `typ`, when present (informational).
    public let type: String?

    /// Header parameters that carry or point at a key. A token never chooses its own key: these are
    /// ignored, whatever they hold (RFC 8725 §3.10).
    public static let keyCarryingParameters: Set<String> = ["jku", "x5u", "jwk", "x5c"]

    /// Applies the header rules to a parsed header object.
    public init(json: JSONValue) throws(TokenRefusal) {
        guard case .object(let members) = json else { throw .malformed("JWT header is not a JSON object") }
        var fields = Fields()
        for (name, value) in members { fields.add(name, value) }
        try self.init(fields)
    }

    /// The header members the rules look at, collected while the header is read.
    struct Fields {
        var alg: JSONValue?
        var kid: JSONValue?
        var typ: JSONValue?
        var crit: JSONValue?
        var b64: JSONValue?

        mutating func add(_ name: String, _ value: JSONValue) {
            switch name {
            case "alg": alg = value
            case "kid": kid = value
            case "typ": typ = value
            case "crit": crit = value
            case "b64": b64 = value
            default: break  // Other parameters, including jku/x5u/jwk/x5c, are never acted upon.
            }
        }
    }

    init(_ fields: Fields) throws(TokenRefusal) {
        guard case .string(let algName)? = fields.alg else {
            throw .malformed("JWT header has no \"alg\"")
        }
        if algName.utf8.count == 4, algName.utf8.elementsEqual("none".utf8, by: { $0 | 0x20 == $1 }) {
            throw TokenRefusal(.algorithmNotAllowed, "Unsecured JWTs (alg none) are not accepted")
        }
        guard let algorithm = JWSAlgorithm(rawValue: algName) else {
            throw TokenRefusal(.algorithmNotAllowed, "Wrong or unsupported encoding algorithm")
        }

        // RFC 7515 §4.1.11: a recipient that does not understand every extension listed in `crit` must
        // refuse the JWS. Portcullis implements no extension, so any `crit` is refused — as is a malformed
        // one (empty, not strings, or naming a standard parameter).
        if fields.crit != nil {
            throw TokenRefusal(
                .unsupportedCriticalHeader, "JWT header names critical extensions that are not supported")
        }
        // RFC 7797: `b64: false` means an unencoded payload, which this verifier does not implement.
        if let b64 = fields.b64, b64 != .bool(true) {
            throw TokenRefusal(.unsupportedCriticalHeader, "Unencoded JWT payloads (b64) are not supported")
        }

        switch fields.kid {
        case nil: keyID = nil
        case .string(let kid): keyID = kid
        default: throw .malformed("JWT header \"kid\" is not a string")
        }
        switch fields.typ {
        case nil: type = nil
        case .string(let typ): type = typ
        default: throw .malformed("JWT header \"typ\" is not a string")
        }
        self.algorithm = algorithm
    }
}
