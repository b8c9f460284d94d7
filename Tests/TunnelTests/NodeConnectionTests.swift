import Ice
import SansIO
import Testing
import TestSupport
@testable import Tunnel
@testable import TunnelSimulation

/// A client and a gateway on the simulated network with one relay between them.
final class TwoPeers {
    let simulation: Simulation
    let relay: RelayHost
    /// A second relay, when asked for.
    let spareRelay: RelayHost?
    let signalling: StubSignalling
    let client: SimulatedNode
    let gateway: SimulatedNode

    /// `gatewayNat` puts the gateway behind a NAT at 198.51.100.77; `forwardGatewayPort` forwards its listen
    /// port there; `dropping` drops datagrams from the start, before the first allocation.
    init(seed: UInt64 = 1, clientNat: SimulatedNat.Behaviour? = nil, gatewayPort: UInt16 = 51820,
         gatewayNat: SimulatedNat.Behaviour? = nil, forwardGatewayPort: Bool = false, twoRelays: Bool = false,
         dropping: ((Datagram) -> Bool)? = nil) {
        simulation = Simulation(seed: seed)
        if let dropping { simulation.dropRules.append(dropping) }
        relay = RelayHost(id: "relay-1", ip: IpAddress("192.0.2.1")!)
        simulation.attach(relay, at: relay.ip)
        spareRelay = twoRelays ? RelayHost(id: "relay-2", ip: IpAddress("192.0.2.2")!) : nil
        if let spareRelay { simulation.attach(spareRelay, at: spareRelay.ip) }
        signalling = StubSignalling(simulation: simulation)
        var nat: SimulatedNat?
        if let clientNat {
            nat = SimulatedNat(publicIp: IpAddress("203.0.113.99")!, behaviour: clientNat)
            simulation.attach(nat!, at: nat!.publicIp)
        }
        client = SimulatedNode(name: "client", role: .client,
                               socket: SocketAddress(nat == nil ? "203.0.113.10:41000" : "10.0.0.2:41000")!, nat: nat,
                               in: simulation)
        var gatewaySideNat: SimulatedNat?
        if let gatewayNat {
            gatewaySideNat = SimulatedNat(publicIp: IpAddress("198.51.100.77")!, behaviour: gatewayNat)
            simulation.attach(gatewaySideNat!, at: gatewaySideNat!.publicIp)
        }
        let gatewaySocket = SocketAddress(ip: IpAddress(gatewaySideNat == nil ? "198.51.100.20" : "10.1.0.2")!, port: gatewayPort)
        if forwardGatewayPort { gatewaySideNat?.forward(port: gatewayPort, to: gatewaySocket) }
        gateway = SimulatedNode(name: "gateway", role: .gateway, socket: gatewaySocket, nat: gatewaySideNat, in: simulation)
        for peer in [client, gateway] {
            signalling.register(peer)
            peer.node.updateRelays(removing: [], adding: [relay, spareRelay].compactMap { $0?.announcement },
                                   now: simulation.now)
            peer.flush(in: simulation)
        }
        simulation.run(for: .seconds(1))
    }

    /// Drops every datagram between the client's and the gateway's public addresses, in both directions.
    func blockDirectPath() {
        let gatewayIp = gateway.socket.ip
        let relays = Set([relay, spareRelay].compactMap { $0?.ip })
        simulation.dropRules.append { datagram in
            (datagram.destination.ip == gatewayIp && !relays.contains(datagram.source.ip))
                || (datagram.source.ip == gatewayIp && !relays.contains(datagram.destination.ip))
        }
    }

    func ping(_ index: Int) -> [UInt8] {
        Array("ping \(index) from the client".utf8)
    }

    /// Connects, sends one packet each way and runs until both arrived.
    func establish(within limit: Duration = .seconds(5)) throws {
        try signalling.connect(client, gateway)
        try client.send(ping(0), to: "gateway", in: simulation)
        let arrived = simulation.run(within: limit) { !gateway.packets(from: "client").isEmpty }
        #expect(arrived, "the client's first packet never reached the gateway")
    }
}

@Suite("Node: connections in the simulated network")
struct NodeConnectionTests {
    @Test("direct path: ICE nominates host to host, the buffered first packet and replies arrive")
    func directPath() throws {
        let world = TwoPeers()
        try world.establish()
        #expect(world.gateway.packets(from: "client") == [world.ping(0)])
        guard case .peerToPeer(let source, let destination)? = world.client.node.path(to: "gateway") else {
            Issue.record("expected a direct path, got \(String(describing: world.client.node.path(to: "gateway")))")
            return
        }
        #expect(source == world.client.socket)
        #expect(destination == world.gateway.socket)
        #expect(try world.gateway.send(Array("pong".utf8), to: "client", in: world.simulation))
        world.simulation.run(for: .milliseconds(50))
        #expect(world.client.packets(from: "gateway") == [Array("pong".utf8)])
        #expect(world.client.count { $0 == .connectionEstablished("gateway") } == 1)
        #expect(world.gateway.count { $0 == .connectionEstablished("client") } == 1)
        #expect(world.relay.relayedWireGuard == 0)
        #expect(world.client.refusals.isEmpty && world.gateway.refusals.isEmpty)
    }

    @Test("relayed path: with direct UDP dropped the traffic goes through the relay as ChannelData")
    func relayedPath() throws {
        let world = TwoPeers()
        world.blockDirectPath()
        try world.establish(within: .seconds(10))
        let path = try #require(world.client.node.path(to: "gateway"))
        #expect(path.isRelayed)
        for index in 1...20 { try world.client.send(world.ping(index), to: "gateway", in: world.simulation) }
        world.simulation.run(for: .milliseconds(100))
        #expect(world.gateway.packets(from: "client") == (0...20).map(world.ping))
        #expect(world.relay.relayedWireGuard > 20)
    }

    @Test("a gateway drops packets until ICE nominates; a client's node holds none and refuses them until its first session")
    func connectingRefuses() throws {
        let world = TwoPeers()
        try world.signalling.upsertGateway(world.gateway, for: world.client, StubSignalling.pairing(1))
        #expect(try world.gateway.send([1, 2, 3], to: "client", in: world.simulation) == false)
        #expect(world.gateway.node.statistics.droppedWithoutPath == 1)
        try world.signalling.upsertClient(world.client, for: world.gateway, StubSignalling.pairing(1))
        for index in 0..<130 { try world.client.send(world.ping(index), to: "gateway", in: world.simulation) }
        #expect(world.client.heldWhileConnecting == 130, "every packet is refused with stillConnecting, none buffered in the node")
        world.simulation.run(for: .seconds(3))
        // What the layer above kept arrives once the session exists, in order.
        #expect(world.gateway.packets(from: "client") == (0..<130).map(world.ping))
        #expect(try world.client.send(world.ping(130), to: "gateway", in: world.simulation), "established: sent at once")
    }

    @Test("a peer behind a NAT that maps to port 3478 still gets a direct path (seed 000)")
    func peerOnPort3478() throws {
        let world = TwoPeers(gatewayPort: 3478)
        try world.establish()
        guard case .peerToPeer? = world.client.node.path(to: "gateway") else {
            Issue.record("expected a direct path, got \(String(describing: world.client.node.path(to: "gateway")))")
            return
        }
        #expect(world.relay.relayedWireGuard == 0)
    }

    @Test("through an endpoint-independent NAT the client is reached at its server-reflexive address")
    func behindNat() throws {
        let world = TwoPeers(clientNat: .endpointIndependent)
        try world.establish()
        let path = try #require(world.gateway.node.path(to: "client"))
        #expect(path.destination.ip == IpAddress("203.0.113.99")!)
        #expect(!path.isRelayed)
    }

    @Test("both sides behind symmetric NATs: a forwarded listen port gives a direct path via an optimistic candidate",
          arguments: [true, false])
    func optimisticCandidate(forwarded: Bool) throws {
        let world = TwoPeers(clientNat: .symmetric, gatewayNat: .symmetric, forwardGatewayPort: forwarded)
        try world.establish(within: .seconds(10))
        let path = try #require(world.client.node.path(to: "gateway"))
        if forwarded {
            #expect(!path.isRelayed, "expected a direct path, got \(path)")
            #expect(path.destination == SocketAddress("198.51.100.77:51820")!)
        } else {
            #expect(path.isRelayed, "two symmetric NATs without a forward leave only the relay")
        }
    }

    @Test("IPv6 only: a direct path between IPv6 hosts, and a relayed one through an IPv6 relay when direct UDP is dropped",
          arguments: [false, true])
    func ipv6(blockDirect: Bool) throws {
        let simulation = Simulation(seed: 6)
        let relay = RelayHost(id: "relay-6", ip: IpAddress("2001:db8::1")!)
        simulation.attach(relay, at: relay.ip)
        let signalling = StubSignalling(simulation: simulation)
        let client = SimulatedNode(name: "client", role: .client, socket: SocketAddress("[2001:db8:1::10]:41000")!, in: simulation)
        let gateway = SimulatedNode(name: "gateway", role: .gateway, socket: SocketAddress("[2001:db8:2::20]:51820")!, in: simulation)
        for peer in [client, gateway] {
            signalling.register(peer)
            peer.node.updateRelays(removing: [], adding: [relay.announcement], now: simulation.now)
            peer.flush(in: simulation)
        }
        if blockDirect {
            let ends = Set([client.socket.ip, gateway.socket.ip])
            simulation.dropRules.append { Set([$0.source.ip, $0.destination.ip]) == ends }
        }
        simulation.run(for: .seconds(1))
        try signalling.connect(client, gateway)
        try client.send(Array("over IPv6".utf8), to: "gateway", in: simulation)
        #expect(simulation.run(within: .seconds(10)) { gateway.packets(from: "client") == [Array("over IPv6".utf8)] })
        let path = try #require(client.node.path(to: "gateway"))
        #expect(path.isRelayed == blockDirect)
        #expect(path.destination.ip.version == .v6)
        #expect(relay.relayedWireGuard > 0 || !blockDirect)
    }

    @Test("a connection without remote candidates fails after 10 s")
    func candidateTimeout() throws {
        let world = TwoPeers()
        let pairing = StubSignalling.pairing(1)
        try world.client.node.upsertConnection(
            "nobody", remoteKey: world.gateway.node.publicKey, presharedKey: pairing.presharedKey,
            local: pairing.clientCredentials, remote: pairing.gatewayCredentials, now: world.simulation.now)
        let start = world.simulation.now
        world.simulation.run(for: .seconds(12))
        #expect(world.client.count { $0 == .connectionFailed("nobody", reason: .noCandidatesReceived) } == 1)
        #expect(world.client.node.connectionCount == 0)
        #expect(throws: NodeError.unknownConnection(recentlyDisconnected: true)) {
            try world.client.node.encapsulate("nobody", packet: UnsafeRawBufferPointer(start: nil, count: 0),
                                              into: UnsafeMutableRawBufferPointer(start: nil, count: 0), now: start + .seconds(12))
        }
    }

    @Test("a connection whose node learnt no address of its own (its relay never answered it) fails after 10 s")
    func noLocalCandidates() throws {
        // Host and server-reflexive candidates come from the relay's answers: the client gets none.
        let world = TwoPeers(seed: 7) { $0.source == SocketAddress("203.0.113.10:41000")! && $0.destination.ip == IpAddress("192.0.2.1")! }
        try world.signalling.connect(world.client, world.gateway)
        world.simulation.run(for: .seconds(12))
        #expect(world.client.count { $0 == .connectionFailed("gateway", reason: .noLocalCandidates) } == 1,
                "the gateway's candidates arrived, but the client had none to pair them with")
        #expect(world.client.node.connectionCount == 0)
    }

    @Test("a node without relays refuses to create a connection")
    func noTurnServers() throws {
        let simulation = Simulation(seed: 3)
        let lonely = SimulatedNode(name: "lonely", role: .client, socket: SocketAddress("203.0.113.50:1000")!, in: simulation)
        let pairing = StubSignalling.pairing(1)
        #expect(throws: NodeError.noTurnServers) {
            try lonely.node.upsertConnection("gateway", remoteKey: lonely.node.publicKey, presharedKey: pairing.presharedKey,
                                             local: pairing.clientCredentials, remote: pairing.gatewayCredentials,
                                             now: simulation.now)
        }
        #expect(lonely.node.connectionCount == 0)
    }
}

@Suite("Node: connection setup time")
struct NodeSetupTimeTests {
    /// Runs in 1 ms steps until `condition` holds; the virtual time it took, or `nil` after `limit`.
    private func time(_ world: TwoPeers, within limit: Duration = .seconds(5), until condition: () -> Bool) -> Duration? {
        let start = world.simulation.now
        while !condition() {
            guard world.simulation.now - start < limit else { return nil }
            world.simulation.run(for: .milliseconds(1))
        }
        return world.simulation.now - start
    }

    @Test("the first packet's reply comes back within two round trips plus the handshake once the candidates arrived",
          arguments: [false, true])
    func firstReply(relayed: Bool) throws {
        let world = TwoPeers()
        if relayed { world.blockDirectPath() }
        // Through the relay a round trip crosses two links each way.
        let roundTrip = world.simulation.latency * (relayed ? 4 : 2)
        try world.signalling.connect(world.client, world.gateway)
        try world.client.send(world.ping(0), to: "gateway", in: world.simulation)
        let there = try #require(time(world) { !world.gateway.packets(from: "client").isEmpty })
        #expect(try world.gateway.send(Array("pong".utf8), to: "client", in: world.simulation))
        let back = try #require(time(world) { !world.client.packets(from: "gateway").isEmpty })
        let elapsed = there + back
        // The candidates' signalling delay, then the check's round trip, the handshake's, and the packet's.
        let expected = world.signalling.delay + roundTrip * 3
        #expect(elapsed <= expected, "first reply after \(elapsed), expected at most \(expected)")
        #expect(world.client.node.path(to: "gateway")?.isRelayed == relayed)
    }
}
