import FlowBroker
import Foundation
import IpPacket
import Noise
import PortalMessages
import SansIO
import SimulatedNetwork
import Tunnel

/// A ``ClientState`` on the simulated network; what it writes to its TUN device is recorded.
final class SimulatedClient: SimulatedHost {
    private(set) var state: ClientState
    /// A restarted process binds a new port; datagrams to the old one find no listener.
    private(set) var socket: SocketAddress
    private(set) var toTun: [IpPacket] = []
    private(set) var errors: [TunnelError] = []
    private(set) var events: [ClientEvent] = []
    /// Every refused portal message, across restarts.
    private(set) var refusals: [String] = []
    var onPortalMessage: (ClientEgress) -> Void = { _ in }
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)

    init(socket: SocketAddress, in simulation: Simulation) {
        self.socket = socket
        state = Self.makeState(records: [], in: simulation)
        simulation.attach(self, at: socket.ip)
    }

    private static func makeState(records: [ProxyIpRecord], in simulation: Simulation) -> ClientState {
        var seed = [UInt8](repeating: 0, count: 32)
        for index in seed.indices { seed[index] = UInt8.random(in: 0...255, using: &simulation.random) }
        return ClientState(privateKey: SecretKey(bytes: seed)!, now: simulation.now, unixTimeNanoseconds: simulation.unixAnchor,
                           proxyIpRecords: records, random: SplitMix64(seed: simulation.random.next()))
    }

    /// The client's network changed (roaming): it binds a new port, as the app rebinds its sockets.
    func rebind() {
        socket.port &+= 1
    }

    /// The records of the last ``ClientEvent/proxyIpRecordsChanged(_:)`` of any session: what the app keeps
    /// across sessions. A session restored from them reports nothing until it assigns a new proxy IP, so they
    /// must outlive the session's events (Fuzz/TunnelProto found this: two restarts in a row lost them).
    private(set) var keptProxyIpRecords: [ProxyIpRecord] = []

    /// The client process starts over with a new key, a new port and, if asked, the proxy IPs the old one reported.
    /// Without `signOut` the old one vanished without a word (a crash); with it, it said Goodbye first.
    func restart(keepingProxyIps: Bool, signOut: Bool, in simulation: Simulation) {
        if signOut {
            state.shutdown(now: simulation.now)
            flush(in: simulation)
        }
        if !keepingProxyIps { keptProxyIpRecords = [] }
        state = Self.makeState(records: keptProxyIpRecords, in: simulation)
        socket.port &+= 1
        events.removeAll()
    }

    deinit {
        output.deallocate()
    }

    var description: String { "client \(socket)" }

    func deliver(_ message: ClientIngress, in simulation: Simulation) throws {
        state.handle(try ClientIngress(event: message.event, payload: message.payload), now: simulation.now)
        flush(in: simulation)
    }

    /// A packet the OS writes into the TUN device.
    func fromTun(_ packet: IpPacket, in simulation: Simulation) {
        do {
            if let datagram = try state.handleTunPacket(packet, into: output, now: simulation.now) {
                simulation.send(Datagram(source: datagram.source ?? socket, destination: datagram.destination,
                                         payload: Array(output[0..<datagram.count])))
            }
        } catch {
            errors.append(error)
        }
        flush(in: simulation)
    }

    func receive(_ datagram: Datagram, in simulation: Simulation) {
        guard datagram.destination.port == socket.port else { return }
        let buffer = PacketBufferPool.shared.take()
        guard datagram.payload.withUnsafeBytes({ buffer.copy(from: $0) }) else { return }
        do {
            if let packet = try state.handleDatagram(local: socket, from: datagram.source, buffer: buffer,
                                                     count: datagram.payload.count, now: simulation.now) {
                toTun.append(packet)
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
            if case .refused(let reason) = event { refusals.append(reason) }
            if case .proxyIpRecordsChanged(let records) = event { keptProxyIpRecords = records }
        }
        while let packet = state.pollTunPacket() { toTun.append(packet) }
    }
}

/// The portal between one client and one gateway, on the toolkit's ``FlowBroker``: `create_flow` becomes
/// `authorize_flow`, `flow_authorized` becomes `flow_created`, candidates pass between them; every message in
/// its wire form, 20 ms after it was sent.
final class StubPortal: FlowPolicy {
    let simulation: Simulation
    let client: SimulatedClient
    let gateway: SimulatedGateway
    let clientId = ClientId("11111111-2222-3333-4444-555555555555")!
    let gatewayId = GatewayId("99999999-2222-3333-4444-555555555555")!
    let siteId = SiteId("77777777-2222-3333-4444-555555555555")!
    let clientIpv4 = IPv4Address(100, 64, 0, 2)
    let gatewayIpv4 = IPv4Address(100, 64, 0, 1)
    /// The gateway's view of each resource; one that is missing is not found.
    var gatewayResources: [ResourceId: GatewayResource] = [:]
    /// `false`: the portal takes `create_flow` and never answers it.
    var answersFlows = true
    private(set) var createFlows: [CreateFlow] = []
    private var broker = FlowBroker(random: SplitMix64(seed: 77))
    let delay: Duration = .milliseconds(20)

    init(simulation: Simulation, client: SimulatedClient, gateway: SimulatedGateway) {
        self.simulation = simulation
        self.client = client
        self.gateway = gateway
        client.onPortalMessage = { [unowned self] message in self.fromClient(message) }
        gateway.onPortalMessage = { [unowned self] message in self.fromGateway(message) }
    }

    // MARK: FlowPolicy

    func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource? {
        gatewayResources[id].map { BrokeredResource(sites: [siteId], gatewayView: $0) }
    }

    /// Like the real portal, the same credentials and key for every flow of one client–gateway pair, so a
    /// second resource on a gateway reuses the connection.
    func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway, resource: ResourceId, unixTime: Int64,
                 expiresAt: Int64?) -> FlowSecrets {
        FlowSecrets(presharedKey: PresharedKey(WireGuardKey(bytes: [UInt8](repeating: 7, count: 32))!),
                    client: IceCredentials(ufrag: "cuf1", password: "client-password-1-xxxxxxxxxx"),
                    gateway: IceCredentials(ufrag: "guf1", password: "gateway-password-1-xxxxxxxxxx"))
    }

    var accessLifetime: Duration? { nil }

    // MARK: Messages

    private func fromClient(_ message: ClientEgress) {
        if case .createFlow(let flow) = message {
            createFlows.append(flow)
            guard answersFlows else { return }
        }
        refreshPeers()
        broker.handle(message, from: clientId, policy: self, unixTime: simulation.unixAnchor / 1_000_000_000)
        deliverOutputs()
    }

    private func fromGateway(_ message: GatewayEgress) {
        refreshPeers()
        _ = broker.handle(message, from: gatewayId)
        deliverOutputs()
    }

    /// The client and the gateway as they are now: a restarted client has a new key.
    private func refreshPeers() {
        broker.clientJoined(FlowBroker.Client(id: clientId, actor: "actor", publicKey: WireGuardKey(bytes: client.state.publicKey.bytes)!,
                                              ipv4: clientIpv4, ipv6: IPv6Address("fd00:2021:1111::2")!))
        broker.gatewayJoined(FlowBroker.Gateway(id: gatewayId, publicKey: WireGuardKey(bytes: gateway.state.publicKey.bytes)!,
                                                site: siteId, ipv4: gatewayIpv4, ipv6: IPv6Address("fd00:2021:1111::1")!))
    }

    private func deliverOutputs() {
        while let output = broker.pollOutput() {
            simulation.schedule(after: delay) { [unowned self] simulation in
                do {
                    switch output {
                    case .toClient(_, let message): try client.deliver(message, in: simulation)
                    case .toGateway(_, let message): try gateway.deliver(message, in: simulation)
                    }
                } catch {
                    simulation.reportProblem("portal message failed: \(error)")
                }
            }
        }
    }
}
