/// The ways a test feeds one byte stream to a reader in reads: cut in two at every byte, and one byte at a
/// time. A reader must give the same events for each as for the whole.
enum ReadSplits {
    static func of(_ sample: String) -> [(label: String, pieces: [String])] {
        let bytes = Array(sample.utf8)
        var splits = (1..<bytes.count).map { cut in
            (
                label: "cut at \(cut)",
                pieces: [
                    String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self),
                ]
            )
        }
        splits.append((label: "one byte at a time", pieces: bytes.map { String(UnicodeScalar($0)) }))
        return splits
    }
}
