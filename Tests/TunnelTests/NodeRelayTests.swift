import Ice
import SansIO
import Testing
import TestSupport
@testable import Tunnel
@testable import TunnelSimulation

@Suite("Node: relays going away")
struct NodeRelayTests {
    @Test("a relay that disappears is replaced per connection: its candidates invalidated, the other's signalled")
    func migration() throws {
        let world = TwoPeers(twoRelays: true)
        world.blockDirectPath()
        try world.establish(within: .seconds(10))
        let connection = try #require(world.client.node.connections["gateway"])
        let lost = try #require(connection.relay)
        let (gone, remaining) = lost == world.relay.id ? (world.relay, world.spareRelay!) : (world.spareRelay!, world.relay)
        gone.isUp = false
        let eventsBefore = world.client.events.count
        for peer in [world.client, world.gateway] {
            peer.node.updateRelays(removing: [gone.id], adding: [], now: world.simulation.now)
            peer.flush(in: world.simulation)
        }
        world.simulation.run(for: .milliseconds(100))
        let after = world.client.events.dropFirst(eventsBefore)
        #expect(after.contains { if case .invalidateIceCandidate(_, let c) = $0 { c.address.ip == gone.ip } else { false } })
        #expect(after.contains { if case .newIceCandidate(_, let c) = $0 { c.kind == .relayed && c.address.ip == remaining.ip } else { false } })
        #expect(connection.relay == remaining.id)

        try world.client.send(world.ping(1), to: "gateway", in: world.simulation)
        #expect(world.simulation.run(within: .seconds(30)) { world.gateway.packets(from: "client").contains(world.ping(1)) })
        let path = try #require(world.client.node.path(to: "gateway"))
        #expect(path.isRelayed)
        #expect(path.ownRelay != gone.id)
    }

    @Test("late traffic from a removed relay is dropped, not mistaken for a peer (spec §3.7)")
    func staleRelayTraffic() throws {
        let world = TwoPeers()
        try world.establish()
        world.client.node.updateRelays(removing: [world.relay.id], adding: [], now: world.simulation.now)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        let channelData: [UInt8] = [0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]
        buffer.copyBytes(from: channelData)
        let result = try world.client.node.decapsulate(local: world.client.socket, from: world.relay.address,
                                                       buffer: buffer, count: channelData.count, now: world.simulation.now)
        #expect(result == nil)
        #expect(world.client.node.statistics.fromStaleRelay == 1)
    }
}
