import Testing

@testable import PortcullisProxy

/// What the access log says of a request: its id.
@Suite("Unit: RequestRecord")
struct RequestRecordTests {
    @Test("a client's sane X-Request-Id is kept; anything else gets a generated one")
    func clientIDsAreKeptWhenSane() {
        #expect(RequestRecord.requestID(from: "req-abc-123") == "req-abc-123")
        for insane in [nil, "", "with space", "tab\there", String(repeating: "a", count: 129), "caf\u{E9}"] {
            let id = RequestRecord.requestID(from: insane)
            #expect(id != insane && id.utf8.count == 15, "\(String(describing: insane))")
        }
    }

    @Test("generated ids: 15 URL-safe characters, one prefix per process, then the serial")
    func generatedIDs() {
        let serials: [UInt64] = [0, 1, 2, 63, 64, 4_095, 1 << 40, (1 << 48) - 1]
        let ids = serials.map(RequestRecord.generatedRequestID(serial:))
        let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_".utf8)
        for id in ids {
            #expect(id.utf8.count == 15)
            #expect(id.utf8.allSatisfy(alphabet.contains))
        }
        #expect(Set(ids).count == ids.count)
        // One process's prefix, then the serial, most significant digit first.
        #expect(Set(ids.map { $0.prefix(7) }).count == 1)
        let suffixes = ids.map { $0.suffix(8) }
        #expect(suffixes.first == "00000000" && suffixes.last == "________")
        #expect(RequestRecord.generatedRequestID(serial: 1).hasSuffix("00000001"))
        #expect(RequestRecord.generatedRequestID(serial: 64).hasSuffix("00000010"))
    }
}
