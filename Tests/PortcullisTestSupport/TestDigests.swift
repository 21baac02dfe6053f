import CLibcrypto

/// Incremental SHA-256 (OpenSSL), so that multi-megabyte test bodies can be checked without keeping them.
public final class SHA256Hasher {
    private let context: OpaquePointer

    public init() {
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL could not set up SHA-256")
        }
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public func update(_ bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The digest of everything so far, as lowercase hex. The hasher is spent afterwards.
    public func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return hexString(digest[..<Int(length)])
    }
}

/// Lowercase hex SHA-256 of `bytes`.
public func sha256Hex(_ bytes: some Collection<UInt8>) -> String {
    let hasher = SHA256Hasher()
    hasher.update(bytes)
    return hasher.finalizeHex()
}

/// SHA-1, which RFC 6455 uses for Sec-WebSocket-Accept.
func sha1(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    guard EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha1(), nil) == 1 else {
        fatalError("OpenSSL could not compute SHA-1")
    }
    return Array(digest[..<Int(length)])
}

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
}

/// The deterministic test body shared with Tests/Support/echo_upstream.py (`/bytes/<n>`): byte `i` is
/// `(i * 31 + 7) % 256`. That sequence repeats every 256 bytes, so every 64 KiB slice of a body is `block`.
public enum DeterministicBody {
    /// The size of `block`, and of the pieces bodies are streamed in.
    public static let blockSize = 64 * 1024

    /// The first 64 KiB of the body, which is also every later 64 KiB.
    public static let block: [UInt8] = (0..<blockSize).map { byte(at: $0) }

    public static func byte(at index: Int) -> UInt8 {
        UInt8((index &* 31 &+ 7) & 0xFF)
    }

    /// The first `count` bytes of the body (for small bodies; large ones should be streamed by blocks).
    public static func bytes(count: Int) -> [UInt8] {
        (0..<count).map { byte(at: $0) }
    }

    /// Lowercase hex SHA-256 of the first `length` bytes, what `/bytes/<length>` sends as X-Body-SHA256.
    public static func sha256Hex(length: Int) -> String {
        let hasher = SHA256Hasher()
        var remaining = length
        block.withUnsafeBytes { block in
            while remaining > 0 {
                let count = min(remaining, blockSize)
                hasher.update(UnsafeRawBufferPointer(rebasing: block[..<count]))
                remaining -= count
            }
        }
        return hasher.finalizeHex()
    }
}
