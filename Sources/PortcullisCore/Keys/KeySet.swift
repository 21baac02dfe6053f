/// Checks one signature with one key. Implemented over OpenSSL in `PortcullisCrypto`; the core only
/// decides which key to ask and whether the algorithm is allowed.
public protocol SignatureVerifier: Sendable {
    /// Whether `signature` is a valid `algorithm` signature of `signingInput`. Called only with an
    /// algorithm the key's type accepts.
    func isValidSignature(
        _ signature: UnsafeRawBufferPointer,
        of signingInput: UnsafeRawBufferPointer,
        algorithm: JWSAlgorithm
    ) -> Bool
}

/// Builds a verifier from validated key numbers. The crypto library's key object is built here, once per
/// key set load, never per request.
public protocol SignatureVerifierFactory: Sendable {
    func makeVerifier(for material: KeyMaterial) throws(KeyRejection) -> any SignatureVerifier
}

/// A key ready to verify signatures.
public struct VerificationKey: Sendable {
    public let keyID: String?
    public let type: KeyType
    /// The JWK's `alg`, when it named one: then the only algorithm accepted.
    public let algorithm: JWSAlgorithm?
    public let verifier: any SignatureVerifier

    public init(keyID: String?, type: KeyType, algorithm: JWSAlgorithm?, verifier: any SignatureVerifier) {
        self.keyID = keyID
        self.type = type
        self.algorithm = algorithm
        self.verifier = verifier
    }

    /// Whether this key may verify a token that claims `algorithm`.
    public func accepts(_ algorithm: JWSAlgorithm) -> Bool {
        if let own = self.algorithm, own != algorithm { return false }
        return type.canVerify(algorithm)
    }
}

/// An immutable set of verification keys, indexed by `kid`.
public struct KeySet: Sendable {
    public let keys: [VerificationKey]
    private let indexByKeyID: [String: Int]

    /// Keys sharing a `kid` must already have been removed (see `KeySetLoader`); if some remain, the
    /// first wins.
    public init(keys: [VerificationKey]) {
        self.keys = keys
        var index: [String: Int] = [:]
        for (position, key) in keys.enumerated() {
            if let keyID = key.keyID, index[keyID] == nil { index[keyID] = position }
        }
        self.indexByKeyID = index
    }

    public static let empty = KeySet(keys: [])

    public var isEmpty: Bool { keys.isEmpty }

    public func key(withID keyID: String) -> VerificationKey? {
        indexByKeyID[keyID].map { keys[$0] }
    }

    /// The ids of the keys held, for comparing sets across refreshes.
    public var keyIDs: Set<String> { Set(indexByKeyID.keys) }
}

/// A JWK left out of a key set, and why. Logged by whoever loads the set.
public struct SkippedKey: Sendable, Hashable, CustomStringConvertible {
    /// Position in the JWKS `keys` array.
    public let index: Int
    public let keyID: String?
    public let reason: String

    public init(index: Int, keyID: String?, reason: String) {
        self.index = index
        self.keyID = keyID
        self.reason = reason
    }

    public var description: String {
        "key #\(index)" + (keyID.map { " (kid \($0.debugDescription))" } ?? "") + " skipped: \(reason)"
    }
}

/// Turns a JWKS document into a `KeySet`. A bad key is skipped with its reason; it never takes the rest of
/// the set down.
public struct KeySetLoader: Sendable {
    public let factory: any SignatureVerifierFactory
    /// The JWKS is read with this JSON parser, which refuses duplicate members.
    public var parser = JSONParser(maxDepth: 8)

    public init(factory: any SignatureVerifierFactory) {
        self.factory = factory
    }

    /// Why a whole JWKS document was refused.
    public struct DocumentError: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// The keys of a JWKS document (`{"keys": [...]}`), and those skipped.
    public func load(jwks bytes: some Collection<UInt8>) throws(DocumentError) -> (KeySet, [SkippedKey]) {
        let document: JSONValue
        do { document = try parser.parse(bytes) } catch {
            throw DocumentError(message: "JWKS is not valid JSON: \(error)")
        }
        return try load(jwks: document)
    }

    public func load(jwks document: JSONValue) throws(DocumentError) -> (KeySet, [SkippedKey]) {
        guard case .array(let entries)? = document["keys"] else {
            throw DocumentError(message: "JWKS has no \"keys\" array")
        }
        var parsed: [(index: Int, jwk: JWK)] = []
        var skipped: [SkippedKey] = []
        for (index, entry) in entries.enumerated() {
            do {
                parsed.append((index, try JWK(json: entry)))
            } catch {
                skipped.append(SkippedKey(index: index, keyID: entry["kid"]?.stringValue, reason: error.reason))
            }
        }

        // Set-level rules. A kid shared by two keys is ambiguous: drop every key that has it rather than
        // guess. An HMAC secret beside public keys means the secret is published: drop the secrets.
        // Kids are counted over every entry, usable or not, so that a broken twin still makes its kid
        // ambiguous.
        var kidCounts: [String: Int] = [:]
        for entry in entries { if let kid = entry["kid"]?.stringValue { kidCounts[kid, default: 0] += 1 } }
        let hasPublicKeys = parsed.contains { !$0.jwk.material.keyType.isSymmetric }

        var keys: [VerificationKey] = []
        for (index, jwk) in parsed {
            func skip(_ reason: String) { skipped.append(SkippedKey(index: index, keyID: jwk.keyID, reason: reason)) }
            if let kid = jwk.keyID, kidCounts[kid, default: 0] > 1 {
                skip("another key in the set has the same kid")
                continue
            }
            if hasPublicKeys && jwk.material.keyType.isSymmetric {
                skip("symmetric key in a set of public keys")
                continue
            }
            do {
                let verifier = try factory.makeVerifier(for: jwk.material)
                keys.append(
                    VerificationKey(
                        keyID: jwk.keyID, type: jwk.material.keyType, algorithm: jwk.algorithm, verifier: verifier))
            } catch {
                skip(error.reason)
            }
        }
        skipped.sort { $0.index < $1.index }
        return (KeySet(keys: keys), skipped)
    }
}
