import Ice
import IpPacket
import P2pControl
import SansIO
import TestSupport
import Testing
@testable import Tunnel
@testable import TunnelSimulation

@Suite("Node: upsert, goodbye, idle, failure and reset")
struct NodeLifecycleTests {
    static let goodbye = try! P2pControlEvent.goodbye.packet().bytes

    @Test("Goodbye ends both sides at once; no ICE timeout follows, and a new connection works")
    func goodbyeEndsBothSides() throws {
        let world = TwoPeers()
        try world.establish()
        Self.goodbye.withUnsafeBytes { world.client.node.closeConnection("gateway", goodbye: $0, now: world.simulation.now) }
        world.client.flush(in: world.simulation)
        #expect(world.client.events.last == .connectionClosed("gateway"))
        #expect(world.client.node.connectionCount == 0)
        world.simulation.run(for: .milliseconds(50))
        #expect(world.gateway.packets(from: "client").last == Self.goodbye)
        #expect(world.gateway.node.connectionCount == 0)
        world.simulation.run(for: .seconds(30))
        #expect(world.gateway.count { if case .connectionFailed = $0 { true } else { false } } == 0)
        #expect(world.client.count { if case .connectionFailed = $0 { true } else { false } } == 0)

        try world.signalling.connect(world.client, world.gateway, StubSignalling.pairing(2))
        try world.client.send(world.ping(1), to: "gateway", in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.gateway.packets(from: "client").last == world.ping(1) })
    }

    @Test("closing a connection that never had a path sends nothing and emits no ConnectionClosed")
    func closeWhileConnecting() throws {
        let world = TwoPeers()
        try world.signalling.upsertClient(world.client, for: world.gateway, StubSignalling.pairing(1))
        world.client.flush(in: world.simulation)
        let before = world.simulation.delivered
        Self.goodbye.withUnsafeBytes { world.client.node.closeConnection("gateway", goodbye: $0, now: world.simulation.now) }
        world.client.flush(in: world.simulation)
        #expect(!world.client.events.contains(.connectionClosed("gateway")))
        world.simulation.run(for: .milliseconds(20))
        #expect(world.simulation.delivered == before)
    }

    @Test("upsert with equal parameters keeps the connection and re-signals its candidates")
    func upsertReuses() throws {
        let world = TwoPeers()
        try world.establish()
        let path = world.client.node.path(to: "gateway")
        let signalled = world.client.count { if case .newIceCandidate = $0 { true } else { false } }
        try world.signalling.upsertClient(world.client, for: world.gateway, StubSignalling.pairing(1))
        #expect(world.client.node.path(to: "gateway") == path)
        #expect(world.client.count { if case .newIceCandidate = $0 { true } else { false } } == 2 * signalled)
        #expect(try world.client.send(world.ping(1), to: "gateway", in: world.simulation))
    }

    /// Seed #10102: the gateway lost the connection without a Goodbye (its state was cleared) while the client kept
    /// it. The portal's next flow makes both sides upsert with unchanged parameters: the client keeps its
    /// connection but rolls the WireGuard session (its last proactive handshake being over 20 s old), so traffic
    /// resumes at once; a second upsert within 20 s starts no second handshake.
    @Test("session roll-over on upsert: the gateway lost the connection silently; traffic resumes and two upserts make one handshake")
    func sessionRollOverOnUpsert() throws {
        let world = TwoPeers()
        try world.establish()
        world.simulation.run(for: .seconds(25))  // past the debounce of the first handshake
        var initiations = 0
        let clientIp = world.client.socket.ip
        world.simulation.dropRules.append { datagram in
            if datagram.source.ip == clientIp, datagram.payload.count == 148, datagram.payload.first == 1 { initiations += 1 }
            return false
        }
        world.gateway.node.removeConnection("client", now: world.simulation.now)
        #expect(world.gateway.node.connectionCount == 0 && world.client.node.connectionCount == 1)

        try world.signalling.connect(world.client, world.gateway)
        let upsertedAt = world.simulation.now, packetsBefore = world.gateway.packets(from: "client").count
        var resumedAfter: Duration?
        for sequence in 1...20 {
            _ = try world.client.send(world.ping(sequence), to: "gateway", in: world.simulation)
            if world.simulation.run(within: .milliseconds(500), until: { world.gateway.packets(from: "client").count > packetsBefore }) {
                resumedAfter = world.simulation.now - upsertedAt
                break
            }
        }
        let resumed = try #require(resumedAfter, "no packet reached the gateway within 10 s: \(world.gateway.refusals)")
        #expect(resumed < .seconds(3), "traffic resumed after \(resumed)")
        #expect(initiations >= 1, "the client rolled its session")

        world.simulation.run(for: .seconds(5))
        let beforeSecondUpsert = initiations
        try world.signalling.connect(world.client, world.gateway)
        try world.client.send(world.ping(99), to: "gateway", in: world.simulation)
        #expect(world.simulation.run(within: .seconds(1)) { world.gateway.packets(from: "client").last == world.ping(99) })
        world.simulation.run(for: .seconds(5))
        #expect(initiations == beforeSecondUpsert, "a second upsert within 20 s rolls no second session")
    }

    @Test("upsert with a changed preshared key replaces the connection (seed 004 #9999)")
    func upsertWithNewPresharedKey() throws {
        let world = TwoPeers()
        try world.establish()
        let rotated = StubSignalling.pairing(1, presharedKeyByte: 9)
        try world.signalling.upsertClient(world.client, for: world.gateway, rotated)
        #expect(world.client.node.path(to: "gateway") == nil)
        try world.client.send(world.ping(1), to: "gateway", in: world.simulation)
        world.simulation.run(for: .seconds(3))
        // The gateway still mixes the old key into the handshake: nothing decrypts.
        #expect(world.gateway.packets(from: "client") == [world.ping(0)])
        #expect(world.client.refusals.contains { if case .wireGuard(.decryptionFailed, _) = $0 { true } else { false } })

        try world.signalling.upsertGateway(world.gateway, for: world.client, rotated)
        try world.client.send(world.ping(2), to: "gateway", in: world.simulation)
        #expect(world.simulation.run(within: .seconds(20)) { world.gateway.packets(from: "client").contains(world.ping(2)) })
    }

    @Test("idle after 20 s without traffic with slow STUN timings; a packet wakes it")
    func idleAndWake() throws {
        let world = TwoPeers()
        try world.establish()
        try world.gateway.send(Array("pong".utf8), to: "client", in: world.simulation)
        world.simulation.run(for: .seconds(21))
        let connection = try #require(world.client.node.connections["gateway"])
        guard case .idle = connection.state else {
            Issue.record("expected idle, got \(connection.state)")
            return
        }
        #expect(connection.agent.timings == .clientIdle)
        try world.client.send(world.ping(1), to: "gateway", in: world.simulation)
        guard case .connected = connection.state else {
            Issue.record("expected connected, got \(connection.state)")
            return
        }
        #expect(connection.agent.timings == .clientDefault)
        world.simulation.run(for: .milliseconds(50))
        #expect(world.gateway.packets(from: "client").last == world.ping(1))
    }

    @Test("when every path goes silent the client fails with an ICE timeout")
    func iceTimeout() throws {
        let world = TwoPeers()
        try world.establish()
        world.simulation.dropRules.append { _ in true }
        world.simulation.run(for: .seconds(60))
        let failures = world.client.events.compactMap { event -> ConnectionFailure? in
            if case .connectionFailed("gateway", let reason) = event { reason } else { nil }
        }
        #expect(failures == [.iceTimeout])
        #expect(world.client.node.connectionCount == 0)
    }

    @Test("two clients behind one NAT address and port are told apart by the session index (seed 004 #10109)")
    func sessionIndexDemux() throws {
        let world = TwoPeers()
        let second = SimulatedNode(name: "client-b", role: .client, socket: SocketAddress("203.0.113.11:41000")!,
                                   in: world.simulation)
        world.signalling.register(second)
        second.node.updateRelays(removing: [], adding: [world.relay.announcement], now: world.simulation.now)
        second.flush(in: world.simulation)
        world.simulation.run(for: .seconds(1))
        try world.establish()
        try world.signalling.connect(second, world.gateway, StubSignalling.pairing(2))
        try second.send(Array("from b".utf8), to: "gateway", in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { !world.gateway.packets(from: "client-b").isEmpty })

        // A data message of client-b, arriving from client-a's address.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        let packet = Array("b again".utf8)
        let datagram = try #require(try packet.withUnsafeBytes {
            try second.node.encapsulate("gateway", packet: $0, into: buffer, now: world.simulation.now)
        })
        let result = try #require(try world.gateway.node.decapsulate(
            local: world.gateway.socket, from: world.client.socket, buffer: buffer, count: datagram.count,
            now: world.simulation.now))
        #expect(result.peer == "client-b")
        #expect(Array(buffer[result.packet]) == packet)
    }

    @Test("behind a symmetric NAT the gateway learns the client's port from its checks (peer-reflexive)")
    func symmetricNat() throws {
        let world = TwoPeers(clientNat: .symmetric)
        try world.establish()
        let path = try #require(world.gateway.node.path(to: "client"))
        #expect(!path.isRelayed)
        let reflexive = world.client.events.compactMap { event -> SocketAddress? in
            if case .newIceCandidate(_, let candidate) = event, candidate.kind == .serverReflexive { candidate.address } else { nil }
        }
        #expect(!reflexive.contains(path.destination))
    }

    /// Firezone #14301: the portal's TURN credentials outlive a reset, so the allocations start over at once with
    /// them (from the new sockets the caller binds) instead of waiting for the portal's next `init`.
    @Test("reset closes every connection, replaces the key pair and restarts the allocations with the same credentials")
    func reset() throws {
        let world = TwoPeers()
        try world.establish()
        let oldKey = world.client.node.publicKey
        let relays = world.client.node.allocations.entries.map { ($0.id, $0.allocation.credentials) }
        world.client.node.reset(now: world.simulation.now)
        world.client.flush(in: world.simulation)
        #expect(world.client.events.last == .connectionClosed("gateway"))
        #expect(world.client.node.publicKey != oldKey)
        #expect(world.client.node.connectionCount == 0)
        let after = world.client.node.allocations.entries
        #expect(!after.isEmpty && after.map(\.id) == relays.map(\.0) && after.map(\.allocation.credentials) == relays.map(\.1))
        world.simulation.run(for: .seconds(2))
        let allocated = world.client.node.allocations.entries.filter { $0.allocation.isAllocated }.count
        #expect(allocated == after.count, "allocated again without the portal")
        let pairing = StubSignalling.pairing(3)
        try world.client.node.upsertConnection("gateway", remoteKey: world.gateway.node.publicKey,
                                               presharedKey: pairing.presharedKey, local: pairing.clientCredentials,
                                               remote: pairing.gatewayCredentials, now: world.simulation.now)
    }
}
