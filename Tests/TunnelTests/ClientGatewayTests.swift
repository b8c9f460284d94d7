import Foundation
import IpPacket
import PortalMessages
import SansIO
import Testing
@testable import Tunnel
@testable import TunnelSimulation

/// ClientState and GatewayState together: a client's TUN packet, a connection intent, the portal's
/// authorisation on both sides, and the packet at the resource behind the gateway.
final class ClientGatewayWorld {
    let simulation = Simulation(seed: 21)
    let relay: RelayHost
    let client: SimulatedClient
    let gateway: SimulatedGateway
    let portal: StubPortal
    let site: Site
    static let lan = ResourceId("aaaaaaaa-0000-4000-8000-000000000001")!
    let host = IpAddress("10.0.0.5")!
    /// The client's `init`, sent again when it rejoins.
    let clientInit: ClientInit

    init(upstreams: [IpAddress] = []) throws {
        relay = RelayHost(id: "2b1a4f7e-0000-4000-8000-000000000001", ip: IpAddress("192.0.2.1")!)
        simulation.attach(relay, at: relay.ip)
        client = SimulatedClient(socket: SocketAddress("203.0.113.10:41000")!, in: simulation)
        gateway = SimulatedGateway(socket: SocketAddress("198.51.100.20:51820")!, in: simulation)
        gateway.kernel = ResourceHost.echo
        portal = StubPortal(simulation: simulation, client: client, gateway: gateway)
        site = Site(id: portal.siteId, name: "site-a")
        portal.gatewayResources[Self.lan] = .cidr(id: Self.lan, address: IpNetwork("10.0.0.0/24")!, name: "lan",
                                                  filters: [.udp(53...53), .icmp])
        let turn = Relay.turn(TurnRelay(id: RelayId(relay.id)!, address: relay.address, username: relay.credentials.username,
                                        password: relay.credentials.password, expiresAt: 1_900_000_000))
        try gateway.deliver(.initialize(GatewayInit(interface: GatewayInterface(ipv4: portal.gatewayIpv4,
                                                                               ipv6: IPv6Address("fd00:2021:1111::1")!),
                                                    relays: [turn])), in: simulation)
        let lan = ClientResource.cidr(.init(id: Self.lan, address: IpNetwork("10.0.0.0/24")!, name: "lan", sites: [site]))
        clientInit = ClientInit(interface: ClientInterface(ipv4: portal.clientIpv4, ipv6: IPv6Address("fd00:2021:1111::2")!,
                                                           upstreamDo53: upstreams.map(Do53Upstream.init)),
                                resources: [lan], relays: [turn])
        try client.deliver(.initialize(clientInit), in: simulation)
        simulation.run(for: .seconds(1))
    }

    func ping(_ destination: IpAddress, sequence: UInt16) throws -> IpPacket {
        try IpPacket.icmpEchoRequest(source: .v4(portal.clientIpv4), destination: destination, identifier: 9, sequence: sequence,
                                     payload: [UInt8](repeating: UInt8(truncatingIfNeeded: sequence), count: 8))
    }
}

@Suite("ClientState with GatewayState: flows end to end in the simulation")
struct ClientGatewayTests {
    @Test("init configures the TUN device: the resource's network plus Firezone's fixed routes")
    func tunConfig() throws {
        let world = try ClientGatewayWorld()
        let config = try #require(world.client.state.tunConfig)
        #expect(config.routes.contains(IpNetwork("10.0.0.0/24")!))
        #expect(config.routes.contains(IpNetwork("100.64.0.0/11")!))
        #expect(config.routes.contains(IpNetwork("fd00:2021:1111:8000::/107")!))
        #expect(!config.routes.contains(IpNetwork("0.0.0.0/0")!))
        #expect(world.client.events.filter { if case .tunInterfaceUpdated = $0 { true } else { false } }.count == 1)
    }

    @Test("the first packet to a resource asks for a flow; buffered packets arrive and the replies come back")
    func firstPacketCreatesFlow() throws {
        let world = try ClientGatewayWorld()
        for sequence: UInt16 in 1...3 { world.client.fromTun(try world.ping(world.host, sequence: sequence), in: world.simulation) }
        #expect(world.portal.createFlows.map(\.resourceId) == [ClientGatewayWorld.lan], "one intent for three packets within 2 s")
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 3 })
        #expect(world.gateway.toTun.count == 3)
        #expect(world.client.toTun.allSatisfy { $0.source == world.host && $0.icmp?.type == 0 })
        #expect(world.client.state.gateway(for: ClientGatewayWorld.lan) == world.portal.gatewayId)
        #expect(world.client.errors.isEmpty && world.gateway.errors.isEmpty)
    }

    @Test("packets wait in the client alone while the flow and connection are set up: 128 of them, the oldest overwritten")
    func packetsWaitInOnePlace() throws {
        let world = try ClientGatewayWorld()
        for sequence: UInt16 in 1...130 { world.client.fromTun(try world.ping(world.host, sequence: sequence), in: world.simulation) }
        #expect(world.client.state.statistics.drops[.bufferFull] == 2)
        #expect(world.simulation.run(within: .seconds(5)) { world.gateway.toTun.count == 128 })
        #expect(world.gateway.toTun.compactMap { $0.icmp.map { UInt16(truncatingIfNeeded: $0.restOfHeader) } } == Array(3...130))
        #expect(world.client.errors.isEmpty && world.gateway.errors.isEmpty)
    }

    @Test("while a flow is pending, a new intent goes out only after 2 s and only with a new packet")
    func intentRateLimit() throws {
        let world = try ClientGatewayWorld()
        world.portal.answersFlows = false
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        world.simulation.run(for: .milliseconds(1500))
        world.client.fromTun(try world.ping(world.host, sequence: 2), in: world.simulation)
        #expect(world.portal.createFlows.count == 1)
        world.simulation.run(for: .seconds(5))
        #expect(world.portal.createFlows.count == 1, "no timer re-sends the intent")
        world.client.fromTun(try world.ping(world.host, sequence: 3), in: world.simulation)
        #expect(world.portal.createFlows.count == 2)
    }

    @Test("packets to no resource, from a wrong source or before init are dropped without an intent")
    func drops() throws {
        let world = try ClientGatewayWorld()
        world.client.fromTun(try world.ping(IpAddress("192.168.9.9")!, sequence: 1), in: world.simulation)
        world.client.fromTun(try IpPacket.icmpEchoRequest(source: IpAddress("100.64.0.77")!, destination: world.host, identifier: 1,
                                                          sequence: 1, payload: []), in: world.simulation)
        #expect(world.portal.createFlows.isEmpty)
        #expect(world.client.state.statistics.drops[.unknownResource] == 1)
        #expect(world.client.state.statistics.drops[.badSource] == 1)
    }

    @Test("after sign-out closed the connection, a packet to the resource is dropped as not connected, not an error")
    func packetAfterSignOut() throws {
        let world = try ClientGatewayWorld()
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        world.client.state.shutdown(now: world.simulation.now)
        world.client.fromTun(try world.ping(world.host, sequence: 2), in: world.simulation)
        #expect(world.client.errors.isEmpty, "\(world.client.errors)")
        #expect(world.client.state.statistics.drops[.notConnected] == 1)
    }

    @Test("a filtered port comes back to the client's TUN device as ICMP prohibited from the resource")
    func filteredPortSeenByClient() throws {
        let world = try ClientGatewayWorld()
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        let syn = try IpPacket.tcp(source: .v4(world.portal.clientIpv4), destination: world.host, sourcePort: 40000,
                                   destinationPort: 22, flags: [.syn], payload: [UInt8]())
        world.client.fromTun(syn, in: world.simulation)
        world.simulation.run(for: .milliseconds(100))
        let answer = try #require(world.client.toTun.last)
        #expect(answer.icmp?.type == 3 && answer.icmp?.code == 13)
        #expect(answer.source == world.host)
    }

    @Test("flow_created for a resource the client does not know is refused without a connection")
    func flowForUnknownResource() throws {
        let world = try ClientGatewayWorld()
        let unknown = ResourceId("dddddddd-0000-4000-8000-000000000004")!
        let created = FlowCreated(
            resourceId: unknown, gatewayId: world.portal.gatewayId,
            gatewayPublicKey: WireGuardKey(bytes: world.gateway.state.publicKey.bytes)!, gatewayIpv4: world.portal.gatewayIpv4,
            gatewayIpv6: IPv6Address("fd00:2021:1111::1")!, siteId: world.portal.siteId,
            presharedKey: PresharedKey(WireGuardKey(bytes: [UInt8](repeating: 7, count: 32))!),
            clientIceCredentials: .init(ufrag: "cuf1", password: "client-password-1-xxxxxxxxxx"),
            gatewayIceCredentials: .init(ufrag: "guf1", password: "gateway-password-1-xxxxxxxxxx"))
        try world.client.deliver(.flowCreated(created), in: world.simulation)
        #expect(world.client.events.contains { if case .refused(let reason) = $0 { reason.contains("unknown resource") } else { false } })
        #expect(world.client.state.node.connectionCount == 0)
    }

    @Test("resource_deleted closes the gateway with a Goodbye, and the gateway forgets the client")
    func resourceDeleted() throws {
        let world = try ClientGatewayWorld()
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        #expect(world.gateway.state.clientIds == [world.portal.clientId])
        try world.client.deliver(.resourceDeleted(ClientGatewayWorld.lan), in: world.simulation)
        world.simulation.run(for: .milliseconds(100))
        #expect(world.client.state.node.connectionCount == 0)
        #expect(world.gateway.state.clientIds.isEmpty)
        #expect(world.gateway.state.node.connectionCount == 0)
        #expect(world.client.events.last { if case .resourcesChanged = $0 { true } else { false } }
            .map { if case .resourcesChanged(let list) = $0 { list.isEmpty } else { false } } == true)
    }
}

@Suite("ClientState: resource status (spec §4.7)")
struct ResourceStatusTests {
    func lastReportedStatus(_ world: ClientGatewayWorld) -> ResourceStatus? {
        for event in world.client.events.reversed() {
            if case .resourcesChanged(let list) = event { return list.first { $0.resource.id == ClientGatewayWorld.lan }?.status }
        }
        return nil
    }

    @Test("unknown at first, online once the gateway connected, unknown after its Goodbye, offline when the portal says so")
    func transitions() throws {
        let world = try ClientGatewayWorld()
        #expect(world.client.state.status(of: ClientGatewayWorld.lan) == .unknown)
        #expect(lastReportedStatus(world) == .unknown)
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        #expect(world.client.state.status(of: ClientGatewayWorld.lan) == .online)
        #expect(lastReportedStatus(world) == .online)

        try world.gateway.deliver(.rejectAccess(AccessKey(clientId: world.portal.clientId, resourceId: ClientGatewayWorld.lan)),
                                  in: world.simulation)
        world.simulation.run(for: .milliseconds(100))
        #expect(world.client.state.status(of: ClientGatewayWorld.lan) == .unknown, "the gateway's Goodbye cleaned it up")
        #expect(lastReportedStatus(world) == .unknown)

        try world.client.deliver(.flowCreationFailed(FlowCreationFailed(resourceId: ClientGatewayWorld.lan, reason: .offline)),
                                 in: world.simulation)
        #expect(world.client.state.status(of: ClientGatewayWorld.lan) == .offline)
        #expect(lastReportedStatus(world) == .offline)
    }
}

@Suite("ClientState: roaming")
struct ClientRoamingTests {
    @Test("reset drops every connection and the key; after the portal's init the next packet connects again")
    func resetAndRejoin() throws {
        let world = try ClientGatewayWorld()
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        let oldKey = world.client.state.publicKey
        world.client.state.reset(now: world.simulation.now)
        world.client.flush(in: world.simulation)
        #expect(world.client.state.publicKey != oldKey)
        #expect(world.client.state.node.connectionCount == 0)
        #expect(world.client.state.gateway(for: ClientGatewayWorld.lan) == nil)
        #expect(world.client.state.tunConfig?.routes.contains(IpNetwork("10.0.0.0/24")!) == true, "resources survive")

        // Rejoining the portal: init again (same resources, the relays), then traffic.
        try world.client.deliver(.initialize(world.clientInit), in: world.simulation)
        world.simulation.run(for: .seconds(1))
        world.client.fromTun(try world.ping(world.host, sequence: 2), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(10)) { world.client.toTun.count == 2 })
        #expect(world.portal.createFlows.count == 2)
        #expect(world.gateway.toTun.count == 2, "the gateway replaced its connection for the client's new key")
    }
}
