import NIOCore
import NIOEmbedded
import Testing

@testable import PortcullisProxy

/// The pool of parked upstream connections, on embedded channels: no sockets, the loop driven by the test.
@Suite("Unit: UpstreamPool")
struct UpstreamPoolTests {
    /// A pool on `channel`'s loop, and a connection handler on an active `channel`.
    static func parkedSetup() throws -> (pool: UpstreamPool, connection: UpstreamConnection, channel: EmbeddedChannel) {
        let channel = EmbeddedChannel()
        let connection = UpstreamConnection(channel: channel)
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        let pool = UpstreamPool(
            eventLoop: channel.embeddedEventLoop, address: try #require(UpstreamAddress(url: "http://127.0.0.1:9")),
            connectTimeout: TimeAmount.seconds(Int64(1)), maxIdle: 4)
        return (pool, connection, channel)
    }

    @Test("a parked connection is handed back as it was parked, once")
    func parkedConnectionIsTakenOnce() throws {
        let (pool, connection, channel) = try Self.parkedSetup()
        pool.release(connection)
        #expect(pool.idleCount == 1)
        #expect(pool.takeIdle() === connection)
        #expect(pool.takeIdle() == nil)
        // Taken out of the pool, its close is no longer the pool's business.
        _ = try? channel.finish()
        #expect(pool.idleCount == 0)
    }

    @Test("a parked connection that the upstream closes is forgotten, never handed out")
    func parkedConnectionClosedIsForgotten() throws {
        let (pool, connection, channel) = try Self.parkedSetup()
        pool.release(connection)
        #expect(pool.idleCount == 1)
        try channel.close().wait()
        #expect(pool.idleCount == 0)
        #expect(pool.takeIdle() == nil)
    }
}
