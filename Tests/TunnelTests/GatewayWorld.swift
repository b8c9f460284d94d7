import Foundation
import IpPacket
import Noise
import PortalMessages
import SansIO
@testable import TunnelSimulation
@testable import Tunnel

/// A client node, a gateway and a relay, wired through a stub portal that speaks the gateway's messages.
final class GatewayWorld {
    let simulation = Simulation(seed: 11)
    let relay: RelayHost
    let client: SimulatedNode
    let gateway: SimulatedGateway
    let clientId = ClientId(UUID(uuidString: "11111111-2222-3333-4444-555555555555")!)
    let clientIpv4 = IPv4Address(100, 64, 0, 2)
    let clientIpv6 = IPv6Address("fd00:2021:1111::2")!
    let gatewayIpv4 = IPv4Address(100, 64, 0, 1)
    let pairing = StubSignalling.pairing(1)
    private(set) var portalReplies: [GatewayEgress] = []

    init() throws {
        relay = RelayHost(id: "2b1a4f7e-0000-4000-8000-000000000001", ip: IpAddress("192.0.2.1")!)
        simulation.attach(relay, at: relay.ip)
        client = SimulatedNode(name: "client", role: .client, socket: SocketAddress("203.0.113.10:41000")!, in: simulation)
        gateway = SimulatedGateway(socket: SocketAddress("198.51.100.20:51820")!, in: simulation)
        client.node.updateRelays(removing: [], adding: [relay.announcement], now: simulation.now)
        client.flush(in: simulation)
        let clientId = clientId
        client.onEvent = { [unowned self] event in
            guard case .newIceCandidate(_, let candidate) = event else { return }
            let simulation = self.simulation
            simulation.schedule(after: .milliseconds(30)) { _ in
                try? self.gateway.deliver(.iceCandidates(ClientCandidates(peer: clientId, candidates: [candidate])), in: simulation)
            }
        }
        gateway.onPortalMessage = { [unowned self] message in
            self.portalReplies.append(message)
            guard case .broadcastIceCandidates(let broadcast) = message else { return }
            let simulation = self.simulation
            simulation.schedule(after: .milliseconds(30)) { _ in
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
            clientIceCredentials: pairing.clientCredentials,
            gatewayIceCredentials: pairing.gatewayCredentials,
            expiresAt: expiresAt)
        try gateway.deliver(.authorizeFlow(flow), in: simulation)
        try client.node.upsertConnection("gateway", remoteKey: gateway.state.publicKey, presharedKey: pairing.presharedKey,
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
