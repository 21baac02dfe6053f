/// What one provider accepts: its algorithms, its claim rules, and where its role claim lives.
public struct VerificationPolicy: Sendable {
    /// The provider's name, carried into every outcome.
    public var provider: String
    /// The algorithms this provider may use. Nil accepts every algorithm a held key accepts.
    public var algorithms: Set<JWSAlgorithm>?
    public var claims: ClaimRules
    /// Where the role is read from (PostgREST's `jwt-role-claim-key`). Nil: no role.
    public var roleClaim: ClaimPath?
    public var limits: TokenLimits

    public init(
        provider: String,
        algorithms: Set<JWSAlgorithm>? = nil,
        claims: ClaimRules = ClaimRules(),
        roleClaim: ClaimPath? = nil,
        limits: TokenLimits = TokenLimits()
    ) {
        self.provider = provider
        self.algorithms = algorithms
        self.claims = claims
        self.roleClaim = roleClaim
        self.limits = limits
    }
}

/// A token that verified, and what it says.
public struct VerifiedToken: Sendable {
    public let provider: String
    public let algorithm: JWSAlgorithm
    /// The `kid` of the key that verified it, if that key has one.
    public let keyID: String?
    public let claims: [String: JSONValue]
    /// The configured audience that the token's `aud` matched.
    public let audience: String?
    /// The value at the role-claim path, if the path selected one.
    public let role: JSONValue?

    /// Memberwise, so that the layers above the verifier (and their tests) can state an outcome. Only
    /// `TokenVerifier` makes one from a token; anything else built this way was never verified.
    public init(
        provider: String, algorithm: JWSAlgorithm, keyID: String?, claims: [String: JSONValue], audience: String?,
        role: JSONValue?
    ) {
        self.provider = provider
        self.algorithm = algorithm
        self.keyID = keyID
        self.claims = claims
        self.audience = audience
        self.role = role
    }
}

/// Checks the signature of a parsed JWS against a key set.
///
/// The key decides: a token's `kid` selects the key with that id, and the key's type (and its JWK `alg`, if
/// any) must accept the token's `alg`. Otherwise a bounded number of compatible keys that have no id of
/// their own are tried (all compatible keys when the token has no `kid`).
public enum SignatureCheck {
    /// Verifies a JWS whose payload may be anything: the payload's encoding is checked here too.
    public static func verify(
        _ token: UnverifiedToken,
        with keys: KeySet,
        allowedAlgorithms: Set<JWSAlgorithm>? = nil
    ) throws(TokenRefusal) -> VerificationKey {
        try token.checkPayloadEncoding()
        return try verifySignature(token, with: keys, allowedAlgorithms: allowedAlgorithms)
    }

    /// The signature alone; the caller decodes (and so checks) the payload afterwards.
    static func verifySignature(
        _ token: UnverifiedToken,
        with keys: KeySet,
        allowedAlgorithms: Set<JWSAlgorithm>?
    ) throws(TokenRefusal) -> VerificationKey {
        let algorithm = token.header.algorithm
        if let allowedAlgorithms, !allowedAlgorithms.contains(algorithm) {
            throw TokenRefusal(.algorithmNotAllowed, "Algorithm \(algorithm.rawValue) is not allowed")
        }
        if let keyID = token.header.keyID, let key = keys.key(withID: keyID) {
            guard key.accepts(algorithm) else {
                throw TokenRefusal(.algorithmNotAllowed, "The key does not accept algorithm \(algorithm.rawValue)")
            }
            guard check(token, with: key) else { throw TokenRefusal(.badSignature, "JWT signature is invalid") }
            return key
        }
        // No key has the token's kid (or it has none): keys without a kid of their own — an HMAC secret, a
        // JWKS that names no kids — may still verify it. A token's kid never selects a key with another kid.
        let hasKeyID = token.header.keyID != nil
        var tried = 0
        var anyWithoutKeyID = false
        for key in keys.keys where !hasKeyID || key.keyID == nil {
            anyWithoutKeyID = anyWithoutKeyID || key.keyID == nil
            guard key.accepts(algorithm) else { continue }
            if check(token, with: key) { return key }
            tried += 1
            if tried == token.limits.maxKeysWithoutKid { break }
        }
        if hasKeyID && !anyWithoutKeyID { throw TokenRefusal(.unknownKid, "No key matches the JWT's kid") }
        guard tried > 0 else { throw TokenRefusal(.noMatchingKey, "No suitable key or wrong key type") }
        throw TokenRefusal(.badSignature, "JWT signature is invalid")
    }

    private static func check(_ token: UnverifiedToken, with key: VerificationKey) -> Bool {
        let parts = token.parts
        return parts.withBytes { bytes in
            let signingInput = bytes.slice(parts.signingInput)
            let valid = withBase64URLDecoded(bytes.slice(parts.signature)) { signature in
                !signature.isEmpty
                    && key.verifier.isValidSignature(signature, of: signingInput, algorithm: token.header.algorithm)
            }
            return valid ?? false
        }
    }
}

/// The whole decision for one token and one provider: structure, header, signature, claims, role.
/// No I/O: keys and the current time are passed in.
public struct TokenVerifier: Sendable {
    public let policy: VerificationPolicy

    public init(policy: VerificationPolicy) {
        self.policy = policy
    }

    public func verify(_ token: Substring, with keys: KeySet, now: Double) -> Result<VerifiedToken, TokenRefusal> {
        Result { () throws(TokenRefusal) in
            try verify(try UnverifiedToken(token, limits: policy.limits), with: keys, now: now)
        }
    }

    public func verify(_ token: UnverifiedToken, with keys: KeySet, now: Double) throws(TokenRefusal) -> VerifiedToken {
        // Signature first: nothing in the payload is looked at until the token is known to be genuine.
        let key = try SignatureCheck.verifySignature(token, with: keys, allowedAlgorithms: policy.algorithms)
        let claims = try token.claims()
        let audience = try policy.claims.check(claims, now: now)
        return VerifiedToken(
            provider: policy.provider,
            algorithm: token.header.algorithm,
            keyID: key.keyID,
            claims: claims,
            audience: audience,
            role: policy.roleClaim?.firstValue(in: .object(claims))
        )
    }
}
