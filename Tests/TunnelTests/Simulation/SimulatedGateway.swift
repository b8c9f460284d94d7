import DnsNat
import Foundation
import IpPacket
import Noise
import PortalMessages
import SansIO
import TestSupport
@testable import Tunnel

/// A ``GatewayState`` on the simulated network. Packets it writes to its TUN device go to `kernel`, which
/// plays the resources behind the gateway and may answer; answers go back through ``GatewayState/handleTunPacket``.
final class SimulatedGateway: SimulatedHost {
    let state: GatewayState
    let socket: SocketAddress
    /// Every packet the gateway wrote to its TUN device.
    private(set) var toTun: [IpPacket] = []
    private(set) var errors: [TunnelError] = []
    /// The resources behind the gateway: given a packet from the TUN device, the reply (if any).
    var kernel: (IpPacket) -> IpPacket? = { _ in nil }
    var onPortalMessage: (GatewayEgress) -> Void = { _ in }
    /// Answers the gateway's resolve requests (as the system resolver would), 10 ms later; `nil` is a failure.
    var resolver: ((DnsName) -> [IpAddress]?)?
    /// The nameserver behind the TUN DNS server (port 53535), answering 10 ms later; `nil` answers nothing.
    var nameserver: ((DnsMessage) -> DnsMessage?)?
    private(set) var events: [GatewayEvent] = []
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)

    init(socket: SocketAddress, in simulation: Simulation) {
        self.socket = socket
        var seed = [UInt8](repeating: 0, count: 32)
        for index in seed.indices { seed[index] = UInt8.random(in: 0...255, using: &simulation.random) }
        state = GatewayState(privateKey: SecretKey(bytes: seed)!, now: simulation.now,
                             unixTimeNanoseconds: simulation.unixAnchor, random: SplitMix64(seed: simulation.random.next()))
        simulation.attach(self, at: socket.ip)
    }

    deinit {
        output.deallocate()
    }

    var description: String { "gateway \(socket)" }

    /// Delivers a portal message in its wire form, as the channel would.
    func deliver(_ message: GatewayIngress, in simulation: Simulation) throws {
        state.handle(try GatewayIngress(event: message.event, payload: message.payload), now: simulation.now)
        flush(in: simulation)
    }

    func receive(_ datagram: Datagram, in simulation: Simulation) {
        let buffer = PacketBufferPool.shared.take()
        guard datagram.payload.withUnsafeBytes({ buffer.copy(from: $0) }) else { return }
        do {
            if let packet = try state.handleDatagram(local: socket, from: datagram.source, buffer: buffer,
                                                     count: datagram.payload.count, now: simulation.now) {
                toTun.append(packet)
                if var reply = kernel(packet) { fromTun(&reply, in: simulation) }
            }
        } catch {
            errors.append(error)
        }
        flush(in: simulation)
    }

    /// A packet the kernel routes into the TUN device towards a client.
    func fromTun(_ packet: inout IpPacket, in simulation: Simulation) {
        do {
            if let datagram = try state.handleTunPacket(&packet, into: output, now: simulation.now) {
                simulation.send(Datagram(source: datagram.source ?? socket, destination: datagram.destination,
                                         payload: Array(output[0..<datagram.count])))
            }
        } catch {
            errors.append(error)
        }
        flush(in: simulation)
    }

    func nextDeadline() -> Instant? { state.pollTimeout() }

    func advance(in simulation: Simulation) {
        state.handleTimeout(now: simulation.now)
        flush(in: simulation)
    }

    func flush(in simulation: Simulation) {
        while let transmit = state.pollTransmit() {
            simulation.send(Datagram(source: transmit.source ?? socket, destination: transmit.destination, payload: transmit.payload))
        }
        while let message = state.pollPortalMessage() { onPortalMessage(message) }
        while let event = state.pollEvent() {
            events.append(event)
            if case .forwardDns(let query) = event, let nameserver, let response = nameserver(query.query) {
                simulation.schedule(after: .milliseconds(10)) { [weak self] in
                    self?.state.dnsAnswered(query, response: response, now: simulation.now)
                    self?.flush(in: simulation)
                }
            }
            guard case .resolve(let request) = event, let resolver else { continue }
            simulation.schedule(after: .milliseconds(10)) { [weak self] in
                guard let self else { return }
                let result: Result<[IpAddress], any Error> = resolver(request.request.domain).map { .success($0) }
                    ?? .failure(ResolutionFailed())
                self.state.resolved(request, result: result, now: simulation.now)
                self.flush(in: simulation)
            }
        }
    }
}

struct ResolutionFailed: Error {}

/// A client node, a gateway and a relay, wired through a stub portal that speaks the gateway's messages.
final class GatewayWorld {
    let simulation = Simulation(seed: 11)
    let relay: TestRelay
    let client: SimulatedNode
    let gateway: SimulatedGateway
    let clientId = ClientId(UUID(uuidString: "11111111-2222-3333-4444-555555555555")!)
    let clientIpv4 = IPv4Address(100, 64, 0, 2)
    let clientIpv6 = IPv6Address("fd00:2021:1111::2")!
    let gatewayIpv4 = IPv4Address(100, 64, 0, 1)
    let pairing = StubSignalling.pairing(1)
    private(set) var portalReplies: [GatewayEgress] = []

    init() throws {
        relay = TestRelay(id: "2b1a4f7e-0000-4000-8000-000000000001", ip: IpAddress("192.0.2.1")!)
        simulation.attach(relay, at: relay.ip)
        client = SimulatedNode(name: "client", role: .client, socket: SocketAddress("203.0.113.10:41000")!, in: simulation)
        gateway = SimulatedGateway(socket: SocketAddress("198.51.100.20:51820")!, in: simulation)
        client.node.updateRelays(removing: [], adding: [relay.announcement], now: simulation.now)
        client.flush(in: simulation)
        let clientId = clientId
        client.onEvent = { [unowned self] event in
            guard case .newIceCandidate(_, let candidate) = event else { return }
            let simulation = self.simulation
            simulation.schedule(after: .milliseconds(30)) {
                try? self.gateway.deliver(.iceCandidates(ClientCandidates(peer: clientId, candidates: [candidate])), in: simulation)
            }
        }
        gateway.onPortalMessage = { [unowned self] message in
            self.portalReplies.append(message)
            guard case .broadcastIceCandidates(let broadcast) = message else { return }
            let simulation = self.simulation
            simulation.schedule(after: .milliseconds(30)) {
                for candidate in broadcast.candidates {
                    self.client.node.addRemoteCandidate("gateway", candidate, now: simulation.now)
                }
                self.client.flush(in: simulation)
            }
        }
        let turn = Relay.turn(TurnRelay(id: RelayId(relay.id)!, address: relay.address, username: relay.credentials.username,
                                        password: relay.credentials.password, expiresAt: 1_900_000_000))
        try gateway.deliver(.initialize(GatewayInit(interface: GatewayInterface(ipv4: gatewayIpv4, ipv6: IPv6Address("fd00:2021:1111::1")!),
                                                    relays: [turn])), in: simulation)
        simulation.run(for: .seconds(1))
    }

    /// `authorize_flow` to the gateway, then (as `flow_created` would) the client's upsert.
    func authorize(_ resource: GatewayResource, ref: String = "ref-1", expiresAt: Int64? = nil) throws {
        let flow = AuthorizeFlow(
            ref: ref, resource: resource,
            client: FlowClient(id: clientId, publicKey: WireGuardKey(bytes: client.node.publicKey.bytes)!,
                               presharedKey: PresharedKey(WireGuardKey(bytes: [UInt8](repeating: 7, count: 32))!),
                               ipv4: clientIpv4, ipv6: clientIpv6),
            clientIceCredentials: .init(username: pairing.clientCredentials.ufrag, password: pairing.clientCredentials.password),
            gatewayIceCredentials: .init(username: pairing.gatewayCredentials.ufrag, password: pairing.gatewayCredentials.password),
            expiresAt: expiresAt)
        try gateway.deliver(.authorizeFlow(flow), in: simulation)
        try client.node.upsertConnection("gateway", remoteKey: gateway.state.node.publicKey, presharedKey: pairing.presharedKey,
                                         local: pairing.clientCredentials, remote: pairing.gatewayCredentials, now: simulation.now)
        client.flush(in: simulation)
    }

    /// Sends a packet from the client's TUN address and runs until the network is quiet.
    func send(_ packet: IpPacket, settle: Duration = .seconds(2)) throws {
        try client.send(packet.bytes, to: "gateway", in: simulation)
        simulation.run(for: settle)
    }

    var unixNow: Int64 {
        (simulation.unixAnchor + (simulation.now - Instant(nanoseconds: 1_000_000_000_000)).totalNanoseconds) / 1_000_000_000
    }

    /// The packets the client decrypted from the gateway, parsed.
    func clientReceived() -> [IpPacket] {
        client.packets(from: "gateway").compactMap { try? IpPacket(copying: $0) }
    }
}
