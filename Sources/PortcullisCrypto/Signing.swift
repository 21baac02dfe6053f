import CLibcrypto
public import PortcullisCore

/// Why a private key could not be read or used, or a key could not be generated. The message never holds
/// key material.
public struct SigningError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Signs JWTs with a private JWK, for development and tests (`portcullis token`): the proxy itself never
/// signs anything.
///
/// The key's public half is checked by the same rules as a verification key (`JWK(json:)`), and the
/// private half must produce a signature that the public half verifies; either failing is an error here,
/// rather than tokens the proxy would refuse later for no visible reason.
public struct JWKSigner: Sendable {
    /// The JWK's own `alg`, or the usual algorithm for its key type when it names none.
    public let algorithm: JWSAlgorithm
    public let keyID: String?
    /// The JWK without its private members, as it would be published; nil for an HMAC secret, which has
    /// no public half.
    public let publicJWK: JSONValue?
    private let key: Key

    private enum Key: Sendable {
        case evp(PKey)
        case secret([UInt8])
    }

    public init(privateJWK: JSONValue) throws(SigningError) {
        guard case .object(let members) = privateJWK else { throw SigningError("the key is not a JSON object") }
        if case .array(let operations)? = members["key_ops"], !operations.contains("sign") {
            throw SigningError("\"key_ops\" does not allow \"sign\"")
        }
        let publicJWK = Self.publicJWK(ofPrivate: privateJWK)
        let jwk: JWK
        do {
            // An oct JWK is its own "public" half: the secret is what verifies.
            jwk = try JWK(json: publicJWK ?? privateJWK)
        } catch {
            throw SigningError("the key is not usable: \(error.reason)")
        }
        let reader = PrivateMembers(members: members)
        switch jwk.material {
        case .rsa(let modulus, let exponent):
            key = .evp(PKey(pointer: try Self.rsaKey(modulus: modulus, exponent: exponent, reader)))
        case .ec(let curve, let x, let y):
            key = .evp(PKey(pointer: try Self.ecKey(curve: curve, x: x, y: y, reader)))
        case .ed25519(let publicKey):
            key = .evp(PKey(pointer: try Self.ed25519Key(publicKey: publicKey, reader)))
        case .oct(let secret):
            key = .secret(secret)
        }
        algorithm = jwk.algorithm ?? Self.defaultAlgorithm(for: jwk.material)
        keyID = jwk.keyID
        self.publicJWK = publicJWK
        try selfCheck(material: jwk.material)
    }

    /// A compact JWS whose header is `{"alg", "typ": "JWT", "kid"}` (no `kid` when the key has none) and whose
    /// payload is `claims`.
    public func token(claims: [String: JSONValue]) throws(SigningError) -> String {
        var header: [String: JSONValue] = ["alg": .string(algorithm.rawValue), "typ": "JWT"]
        if let keyID { header["kid"] = .string(keyID) }
        let signingInput =
            Base64URL.encode(JSONValue.object(header).compactJSON.utf8) + "."
            + Base64URL.encode(JSONValue.object(claims).compactJSON.utf8)
        return signingInput + "." + Base64URL.encode(try signature(of: Array(signingInput.utf8)))
    }

    /// The JWS signature of `signingInput` (for ECDSA the raw r‖s form, RFC 7518 §3.4).
    public func signature(of signingInput: [UInt8]) throws(SigningError) -> [UInt8] {
        switch key {
        case .secret(let secret):
            return try Self.hmac(signingInput, secret: secret, digest: algorithm.digest!)
        case .evp(let key):
            let signature = try Self.digestSign(signingInput, key: key.pointer, algorithm: algorithm)
            guard case .ecdsa(let curve) = algorithm.family else { return signature }
            return try Self.rawECDSASignature(fromDER: signature, curve: curve)
        }
    }

    /// The JWK without private members (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2) and without `key_ops`, which
    /// on a private key names signing; nil for an oct key, whose only member is the secret.
    public static func publicJWK(ofPrivate jwk: JSONValue) -> JSONValue? {
        guard case .object(var members) = jwk, members["kty"] != "oct" else { return nil }
        for name in ["d", "p", "q", "dp", "dq", "qi", "oth", "key_ops"] { members[name] = nil }
        return .object(members)
    }

    static func defaultAlgorithm(for material: KeyMaterial) -> JWSAlgorithm {
        switch material {
        case .rsa: .rs256
        case .ec(.p256, _, _): .es256
        case .ec(.p384, _, _): .es384
        case .ec(.p521, _, _): .es512
        case .ed25519: .eddsa
        case .oct: .hs256
        }
    }

    /// A signature the published key cannot verify would make every token fail at the proxy, so a private
    /// half that does not belong to its public half (a JWK edited by hand, say) is refused here.
    private func selfCheck(material: KeyMaterial) throws(SigningError) {
        let probe = Array("portcullis signing self-check".utf8)
        let signature = try signature(of: probe)
        let verifier: any SignatureVerifier
        do { verifier = try OpenSSLVerifierFactory().makeVerifier(for: material) } catch {
            throw SigningError("the key is not usable: \(error.reason)")
        }
        let verified = signature.withUnsafeBytes { signatureBytes in
            probe.withUnsafeBytes { verifier.isValidSignature(signatureBytes, of: $0, algorithm: algorithm) }
        }
        guard verified else { throw SigningError("the private key does not belong to its public key") }
    }

    // MARK: - Private keys from JWK numbers

    /// Reads the private members of a JWK.
    private struct PrivateMembers {
        let members: [String: JSONValue]

        func bytes(_ name: String) throws(SigningError) -> [UInt8] {
            guard let value = members[name] else { throw SigningError("the key has no \"\(name)\": not a private key") }
            guard let encoded = value.stringValue, let bytes = Base64URL.decode(encoded), !bytes.isEmpty else {
                throw SigningError("\"\(name)\" is not base64url")
            }
            return bytes
        }

        func has(_ name: String) -> Bool { members[name] != nil }
    }

    private static func rsaKey(
        modulus: [UInt8], exponent: [UInt8], _ reader: PrivateMembers
    ) throws(SigningError) -> OpaquePointer {
        guard !reader.has("oth") else { throw SigningError("multi-prime RSA keys (\"oth\") are not supported") }
        // The CRT members make signing about three times faster; RFC 7518 §6.3.2 allows all of them or none.
        let crtNames = ["p", "q", "dp", "dq", "qi"]
        let crtCount = crtNames.filter(reader.has).count
        guard crtCount == 0 || crtCount == crtNames.count else {
            throw SigningError("the key has some but not all of p, q, dp, dq, qi")
        }
        var numbers: [(name: UnsafePointer<CChar>, bytes: [UInt8], secret: Bool)] = [
            (portcullis_PARAM_RSA_N, modulus, false),
            (portcullis_PARAM_RSA_E, exponent, false),
            (portcullis_PARAM_RSA_D, try reader.bytes("d"), true),
        ]
        if crtCount > 0 {
            numbers += [
                (portcullis_PARAM_RSA_FACTOR1, try reader.bytes("p"), true),
                (portcullis_PARAM_RSA_FACTOR2, try reader.bytes("q"), true),
                (portcullis_PARAM_RSA_EXPONENT1, try reader.bytes("dp"), true),
                (portcullis_PARAM_RSA_EXPONENT2, try reader.bytes("dq"), true),
                (portcullis_PARAM_RSA_COEFFICIENT1, try reader.bytes("qi"), true),
            ]
        }
        let bigNumbers = numbers.map { number in
            // Private numbers go into secure BIGNUMs, so that their copies in the OSSL_PARAM array are
            // cleared when it is freed.
            BN_bin2bn(number.bytes, Int32(number.bytes.count), number.secret ? BN_secure_new() : nil)
        }
        defer { bigNumbers.forEach(BN_clear_free) }
        guard bigNumbers.allSatisfy({ $0 != nil }) else { throw SigningError("out of memory") }
        return try keyPair(type: "RSA") { builder in
            zip(numbers, bigNumbers).allSatisfy { OSSL_PARAM_BLD_push_BN(builder, $0.name, $1) == 1 }
                ? OSSL_PARAM_BLD_to_param(builder) : nil
        }
    }

    private static func ecKey(
        curve: EllipticCurve, x: [UInt8], y: [UInt8], _ reader: PrivateMembers
    ) throws(SigningError) -> OpaquePointer {
        let d = try reader.bytes("d")
        // RFC 7518 §6.2.2.1: d is exactly as long as the curve's order.
        guard d.count == curve.coordinateByteCount else {
            throw SigningError("\"d\" is not \(curve.coordinateByteCount) bytes for \(curve.rawValue)")
        }
        let groupName: String =
            switch curve {
            case .p256: "prime256v1"
            case .p384: "secp384r1"
            case .p521: "secp521r1"
            }
        let point: [UInt8] = [0x04] + x + y  // uncompressed SEC 1 encoding
        guard let privateNumber = BN_bin2bn(d, Int32(d.count), BN_secure_new()) else {
            throw SigningError("out of memory")
        }
        defer { BN_clear_free(privateNumber) }
        return try keyPair(type: "EC") { builder in
            // The builder keeps pointers to the name and the point until `to_param` copies them.
            groupName.withCString { name in
                point.withUnsafeBytes { pointBytes in
                    OSSL_PARAM_BLD_push_utf8_string(builder, portcullis_PARAM_GROUP_NAME, name, 0) == 1
                        && OSSL_PARAM_BLD_push_octet_string(
                            builder, portcullis_PARAM_PUB_KEY, pointBytes.baseAddress, pointBytes.count) == 1
                        && OSSL_PARAM_BLD_push_BN(builder, portcullis_PARAM_PRIV_KEY, privateNumber) == 1
                        ? OSSL_PARAM_BLD_to_param(builder) : nil
                }
            }
        }
    }

    private static func ed25519Key(publicKey: [UInt8], _ reader: PrivateMembers) throws(SigningError) -> OpaquePointer {
        let d = try reader.bytes("d")
        guard d.count == 32 else { throw SigningError("\"d\" is not 32 bytes for Ed25519") }
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, d, d.count) else {
            throw SigningError("OpenSSL refused the Ed25519 key: \(OpenSSLError.drain())")
        }
        return key
    }

    /// EVP_PKEY_fromdata for a key pair, with parameters pushed onto a builder and converted by `build`.
    private static func keyPair(
        type: String,
        build: (OpaquePointer?) -> UnsafeMutablePointer<OSSL_PARAM>?
    ) throws(SigningError) -> OpaquePointer {
        switch EVPKeyFromData.make(type: type, selection: portcullis_EVP_PKEY_KEYPAIR, build: build) {
        case .success(let key): return key
        case .failure(let failure): throw SigningError(failure.message)
        }
    }

    // MARK: - Signatures

    private static func digestSign(
        _ message: [UInt8], key: OpaquePointer, algorithm: JWSAlgorithm
    ) throws(SigningError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw SigningError("out of memory") }
        defer { EVP_MD_CTX_free(context) }
        // Ed25519 hashes internally and takes no digest.
        let digest = algorithm.digest.map(Digests.md(_:))
        var keyContext: OpaquePointer?
        var ok = EVP_DigestSignInit(context, &keyContext, digest?.md, nil, key) == 1
        if ok, algorithm.family == .rsaPSS, let digest {
            // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash (what the verifier expects).
            ok =
                EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1
                && EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, Int32(digest.length)) == 1
                && EVP_PKEY_CTX_set_rsa_mgf1_md(keyContext, digest.md) == 1
        } else if ok, algorithm.family == .rsaPKCS1 {
            ok = EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PADDING) == 1
        }
        var length = Int(EVP_PKEY_get_size(key))  // the largest signature the key makes
        var signature = [UInt8](repeating: 0, count: length)
        ok = ok && EVP_DigestSign(context, &signature, &length, message, message.count) == 1
        guard ok else { throw SigningError("OpenSSL could not sign: \(OpenSSLError.drain())") }
        return Array(signature.prefix(length))
    }

    /// OpenSSL's ECDSA signatures are DER; JWS wants r and s as fixed-length big-endian numbers.
    private static func rawECDSASignature(fromDER der: [UInt8], curve: EllipticCurve) throws(SigningError) -> [UInt8] {
        let half = curve.coordinateByteCount
        let parsed = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &cursor, buffer.count)
        }
        guard let parsed else { throw SigningError("OpenSSL made an unreadable ECDSA signature") }
        defer { ECDSA_SIG_free(parsed) }
        var raw = [UInt8](repeating: 0, count: 2 * half)
        let written = raw.withUnsafeMutableBufferPointer { buffer in
            BN_bn2binpad(ECDSA_SIG_get0_r(parsed), buffer.baseAddress, Int32(half)) == half
                && BN_bn2binpad(ECDSA_SIG_get0_s(parsed), buffer.baseAddress! + half, Int32(half)) == half
        }
        guard written else { throw SigningError("OpenSSL made an ECDSA signature too long for \(curve.rawValue)") }
        return raw
    }

    private static func hmac(
        _ message: [UInt8], secret: [UInt8], digest: JWSAlgorithm.Digest
    ) throws(SigningError) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var tagLength: UInt32 = 0
        guard HMAC(Digests.md(digest).md, secret, Int32(secret.count), message, message.count, &tag, &tagLength) != nil
        else { throw SigningError("OpenSSL could not compute the HMAC: \(OpenSSLError.drain())") }
        return Array(tag.prefix(Int(tagLength)))
    }
}
