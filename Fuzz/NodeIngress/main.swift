// libFuzzer harness for the data plane's socket ingress: hostile datagrams into `Node.decapsulate` of a client
// and a gateway that are connected through the simulation (ICE, a TURN relay, WireGuard). Whatever arrives,
// nothing crashes, no datagram turns into a packet for the TUN device, every refusal is counted, and afterwards
// a packet still crosses each way (no state corruption). Build and run with `scripts/fuzz NodeIngress [seconds]`.
//
// Input: records of [target (1 byte), length (1 byte), bytes]. Target bit 0 picks the receiving node (gateway
// or client), bit 1 makes the bytes a mutation of a datagram really seen on the wire while connecting (they
// are XORed onto it, and it keeps its true source, since replaying a genuine STUN check from a new address
// is an attack ICE itself cannot tell apart), bits 2–3 pick the source of raw bytes: the peer, the relay,
// a stranger on port 3478, or an IPv6 stranger.
import SansIO
import Tunnel
import TunnelSimulation

/// The connected pair and every datagram seen while connecting; built afresh for each input so a crash replays.
final class ConnectedPair {
    let simulation = Simulation(seed: 3) { problem in fatalError("simulation problem: \(problem)") }
    let relay = RelayHost(id: "relay-1", ip: IpAddress("192.0.2.1")!)
    let client: SimulatedNode
    let gateway: SimulatedNode
    private(set) var wire: [Datagram] = []

    init() {
        simulation.attach(relay, at: relay.ip)
        let signalling = StubSignalling(simulation: simulation)
        client = SimulatedNode(name: "client", role: .client, socket: SocketAddress("203.0.113.10:41000")!, in: simulation)
        gateway = SimulatedNode(name: "gateway", role: .gateway, socket: SocketAddress("198.51.100.20:51820")!, in: simulation)
        simulation.onSend = { [unowned self] datagram in wire.append(datagram) }
        for peer in [client, gateway] {
            signalling.register(peer)
            peer.node.updateRelays(removing: [], adding: [relay.announcement], now: simulation.now)
            peer.flush(in: simulation)
        }
        simulation.run(for: .seconds(1))
        do {
            try signalling.connect(client, gateway)
            try client.send(Array("hello".utf8), to: "gateway", in: simulation)
        } catch {
            fatalError("connecting failed: \(error)")
        }
        require(simulation.run(within: .seconds(5)) { !gateway.packets(from: "client").isEmpty }, "the pair never connected")
        simulation.run(for: .milliseconds(200))
    }

    func sources(toward node: SimulatedNode) -> [SocketAddress] {
        let peer = node === gateway ? client.socket : gateway.socket
        return [peer, relay.address, SocketAddress("192.0.2.77:3478")!, SocketAddress("[2001:db8::9]:3478")!]
    }

    /// Sends `payload` between the nodes and runs until it arrived; returns whether it did.
    func crosses(_ payload: [UInt8], from sender: SimulatedNode, to receiver: SimulatedNode) -> Bool {
        let peer = sender === client ? "gateway" : "client"
        let before = receiver.received.count
        _ = try? sender.send(payload, to: peer, in: simulation)
        simulation.run(within: .seconds(5)) { receiver.received.count > before }
        return receiver.received.dropFirst(before).contains { $0.packet == payload }
    }
}

/// `precondition` drops its message in release builds; a violated property should say which one.
func require(_ holds: Bool, _ property: @autoclosure () -> String) {
    guard !holds else { return }
    fatalError("property violated: \(property())")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNodeIngress(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let pair = ConnectedPair()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    defer { buffer.deallocate() }
    var refused = [0, 0]
    var offset = 0
    while offset + 2 <= input.count {
        let target = input[offset], length = Int(input[offset + 1])
        let bytes = Array(input[(offset + 2)..<min(input.count, offset + 2 + length)])
        offset += 2 + length
        let index = Int(target & 1)
        let receiver = index == 0 ? pair.gateway : pair.client
        let seen = pair.wire.filter { $0.destination.ip == receiver.socket.ip }
        var datagram: [UInt8], source: SocketAddress
        if target & 2 != 0, !seen.isEmpty {
            let original = seen[Int(target >> 2) % seen.count]
            datagram = original.payload
            for (position, byte) in bytes.enumerated() where position < datagram.count { datagram[position] ^= byte }
            source = original.source
        } else {
            datagram = bytes
            source = pair.sources(toward: receiver)[Int(target >> 2) & 3]
        }
        buffer.copyBytes(from: datagram)
        do {
            let packet = try receiver.node.decapsulate(local: receiver.socket, from: source, buffer: buffer,
                                                       count: datagram.count, now: pair.simulation.now)
            require(packet == nil, "a hostile datagram became a packet: \(datagram) from \(source)")
        } catch {
            refused[index] += 1
        }
        receiver.flush(in: pair.simulation)
    }
    require(pair.gateway.node.statistics.refused == refused[0], "every refusal at the gateway is counted")
    require(pair.client.node.statistics.refused == refused[1], "every refusal at the client is counted")
    pair.simulation.run(for: .seconds(1))
    require(pair.crosses(Array("ping".utf8), from: pair.client, to: pair.gateway), "the client's packet still arrives")
    require(pair.crosses(Array("pong".utf8), from: pair.gateway, to: pair.client), "the gateway's packet still arrives")
    // What `status` shows after any input: the connection, with a path, traffic each way and a handshake.
    for side in [pair.client, pair.gateway] {
        let now = pair.simulation.now
        let views = side.node.peerViews(now: now)
        require(views.count == 1 && views[0].path != nil && views[0].traffic.packetsSent > 0 && views[0].traffic.packetsReceived > 0,
                "the status view shows the working connection: \(views)")
        require(views[0].lastHandshake.map { $0 <= now } == true, "the latest handshake is in the past: \(views)")
        require(side.node.relayViews.allSatisfy { !$0.server.addresses.isEmpty }, "every relay has an address")
    }
    return 0
}
