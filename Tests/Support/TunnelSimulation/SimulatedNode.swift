import Ice
import IpPacket
import Noise
import P2pControl
import SansIO
import SimulatedNetwork
import Tunnel

/// A ``Node`` on the simulated network: one UDP socket, optionally behind a NAT; it records what it
/// decrypted, what it was told, and every refused datagram.
public final class SimulatedNode: SimulatedHost {
    public let name: String
    public let node: Node<String>
    public let socket: SocketAddress
    let nat: SimulatedNat?
    private(set) var events: [NodeEvent<String>] = []
    public private(set) var received: [(peer: String, packet: [UInt8])] = []
    private(set) var refusals: [NodeError] = []
    /// Called for every node event, e.g. to relay candidates through the stub portal.
    var onEvent: (NodeEvent<String>) -> Void = { _ in }
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)

    public init(name: String, role: NodeRole, socket: SocketAddress, nat: SimulatedNat? = nil, in simulation: Simulation) {
        self.name = name
        self.socket = socket
        self.nat = nat
        var seed = [UInt8](repeating: 0, count: 32)
        for index in seed.indices { seed[index] = UInt8.random(in: 0...255, using: &simulation.random) }
        node = Node(role: role, privateKey: SecretKey(bytes: seed)!, now: simulation.now,
                    unixTimeNanoseconds: simulation.unixAnchor, random: SplitMix64(seed: simulation.random.next()))
        if let nat {
            nat.connect(self, at: socket.ip)
            simulation.join(self)
        } else {
            simulation.attach(self, at: socket.ip)
        }
    }

    deinit {
        buffer.deallocate()
    }

    public func receive(_ datagram: Datagram, in simulation: Simulation) {
        buffer.copyBytes(from: datagram.payload)
        do {
            if let (peer, range) = try node.decapsulate(local: socket, from: datagram.source, buffer: buffer,
                                                        count: datagram.payload.count, now: simulation.now) {
                let packet = Array(buffer[range])
                received.append((peer, packet))
                // The tunnel layer's reaction to a Goodbye: drop the peer's state without a word.
                if let parsed = try? IpPacket(copying: packet), (try? P2pControlEvent(parsed)) == .goodbye {
                    node.removeConnection(peer, now: simulation.now)
                }
            }
        } catch {
            refusals.append(error)
        }
        flush(in: simulation)
    }

    public func nextDeadline() -> Instant? { node.pollTimeout() }

    /// The node's timers by component, for a stuck simulation's report.
    public var description: String {
        "node \(name): \(node.timerReport())"
    }

    public func advance(in simulation: Simulation) {
        node.handleTimeout(now: simulation.now)
        flush(in: simulation)
    }

    /// Packets the node refused with `stillConnecting`, sent when the connection is established (the layer
    /// above the node keeps them, as ClientState does).
    private var waiting: [String: [[UInt8]]] = [:]
    /// How many packets the node refused while the connection was set up.
    private(set) var heldWhileConnecting = 0

    /// Sends an IP packet to a peer; returns whether it went out at once (rather than held, buffered or dropped).
    @discardableResult
    public func send(_ packet: [UInt8], to peer: String, in simulation: Simulation) throws -> Bool {
        let datagram: EncryptedDatagram?
        do {
            datagram = try packet.withUnsafeBytes { bytes throws(NodeError) in
                try node.encapsulate(peer, packet: bytes, into: buffer, now: simulation.now)
            }
        } catch NodeError.stillConnecting {
            waiting[peer, default: []].append(packet)
            heldWhileConnecting += 1
            return false
        }
        if let datagram {
            transmit(Datagram(source: datagram.source ?? socket, destination: datagram.destination,
                              payload: Array(buffer[0..<datagram.count])), in: simulation)
        }
        flush(in: simulation)
        return datagram != nil
    }

    /// Drains the node's transmits onto the network and its events into ``events``.
    public func flush(in simulation: Simulation) {
        while let transmit = node.pollTransmit() {
            self.transmit(Datagram(source: transmit.source ?? socket, destination: transmit.destination,
                                   payload: transmit.payload), in: simulation)
        }
        while let event = node.pollEvent() {
            events.append(event)
            onEvent(event)
            if case .connectionEstablished(let peer) = event, let packets = waiting.removeValue(forKey: peer) {
                for packet in packets { _ = try? send(packet, to: peer, in: simulation) }
            }
        }
    }

    private func transmit(_ datagram: Datagram, in simulation: Simulation) {
        simulation.send(nat?.outbound(datagram) ?? datagram)
    }

    public func packets(from peer: String) -> [[UInt8]] {
        received.filter { $0.peer == peer }.map(\.packet)
    }

    func count(_ predicate: (NodeEvent<String>) -> Bool) -> Int {
        events.filter(predicate).count
    }
}
