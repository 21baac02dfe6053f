package import PortcullisCore

/// Header names, matched in any ASCII letter case without lowercasing or hashing the name looked up: the
/// upstream head is built by looking up every header of every request here, so a lookup must not allocate.
public struct HeaderNameSet: Sendable {
    /// Lowercased names, by their length in bytes: a lookup compares only the names of its own length.
    private var byLength: [[[UInt8]]] = []

    public init(_ names: some Sequence<String>) {
        for name in names { insert(name) }
    }

    public mutating func insert(_ name: String) {
        let lowered = name.utf8.map(PolicyText.asciiLowercased)
        if byLength.count <= lowered.count {
            byLength.append(contentsOf: repeatElement([], count: lowered.count + 1 - byLength.count))
        }
        if !byLength[lowered.count].contains(lowered) { byLength[lowered.count].append(lowered) }
    }

    public func contains(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { contains($0) }
    }

    package func contains(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count < byLength.count else { return false }
        for candidate in byLength[name.count]
        where candidate.withUnsafeBufferPointer({ PolicyText.equalsIgnoringASCIICase(name, $0) }) {
            return true
        }
        return false
    }
}
