import Foundation
import IpPacket
import PortalMessages
import SansIO
import Testing
@testable import Tunnel
@testable import TunnelSimulation

/// The Internet resource end to end (spec §4.2, §4.4.2, §5.8): off by default, on it routes everything that
/// is no more specific resource through its gateway, unfiltered; off again it closes that gateway.
@Suite("ClientState: the Internet resource")
struct InternetResourceTests {
    static let internet = ResourceId("cccccccc-0000-4000-8000-000000000003")!
    static let outside = IpAddress("8.8.8.8")!

    func world() throws -> ClientGatewayWorld {
        let world = try ClientGatewayWorld()
        world.portal.gatewayResources[Self.internet] = .internet(id: Self.internet)
        try world.client.deliver(.resourceCreatedOrUpdated(.internet(.init(id: Self.internet, sites: [world.site]))),
                                 in: world.simulation)
        return world
    }

    func routes(_ world: ClientGatewayWorld) -> [IpNetwork] {
        world.client.state.tunConfig?.routes ?? []
    }

    @Test("off by default: no default route and packets outside every resource are dropped")
    func offByDefault() throws {
        let world = try world()
        #expect(!routes(world).contains(IpNetwork("0.0.0.0/0")!))
        world.client.fromTun(try world.ping(Self.outside, sequence: 1), in: world.simulation)
        #expect(world.portal.createFlows.isEmpty)
        #expect(world.client.state.statistics.drops[.unknownResource] == 1)
    }

    @Test("on: default routes, any address reaches the gateway unchanged and the reply comes back; a CIDR resource still wins")
    func on() throws {
        let world = try world()
        world.client.state.setInternetResource(enabled: true, now: world.simulation.now)
        world.client.flush(in: world.simulation)
        #expect(routes(world).contains(IpNetwork("0.0.0.0/0")!) && routes(world).contains(IpNetwork("::/0")!))
        world.client.fromTun(try world.ping(Self.outside, sequence: 1), in: world.simulation)
        #expect(world.portal.createFlows.map(\.resourceId) == [Self.internet])
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        #expect(world.gateway.toTun.map(\.destination) == [Self.outside])
        #expect(world.client.toTun.first?.source == Self.outside)
        // TCP to any port: the Internet resource has no filters.
        let syn = try IpPacket.tcp(source: .v4(world.portal.clientIpv4), destination: Self.outside, sourcePort: 40_000,
                                   destinationPort: 8443, flags: [.syn], payload: [UInt8]())
        world.client.fromTun(syn, in: world.simulation)
        world.simulation.run(for: .milliseconds(100))
        #expect(world.gateway.toTun.last?.tcp?.destinationPort == 8443)
        // The LAN resource is more specific: its own flow, even with the Internet resource on.
        world.client.fromTun(try world.ping(world.host, sequence: 2), in: world.simulation)
        #expect(world.portal.createFlows.map(\.resourceId) == [Self.internet, ClientGatewayWorld.lan])
    }

    @Test("off again: the default routes go and the gateway used only for it gets a Goodbye")
    func offAgain() throws {
        let world = try world()
        world.client.state.setInternetResource(enabled: true, now: world.simulation.now)
        world.client.fromTun(try world.ping(Self.outside, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        world.client.state.setInternetResource(enabled: false, now: world.simulation.now)
        world.client.flush(in: world.simulation)
        world.simulation.run(for: .milliseconds(100))
        #expect(!routes(world).contains(IpNetwork("0.0.0.0/0")!))
        #expect(world.client.state.node.connectionCount == 0)
        #expect(world.gateway.state.clientIds.isEmpty, "the gateway heard the Goodbye")
        world.client.fromTun(try world.ping(Self.outside, sequence: 2), in: world.simulation)
        #expect(world.portal.createFlows.count == 1, "no new intent while off")
    }
}
