import Ice
import Noise
import SansIO
import SimulatedNetwork
import Tunnel

/// The portal's part for two nodes: ICE credentials and a preshared key per pair, `upsert` on both sides
/// (the gateway first, as `authorize_flow` precedes `flow_created`), and candidates relayed as the strings
/// the portal carries, after a signalling delay.
public final class StubSignalling {
    let simulation: Simulation
    public var delay: Duration = .milliseconds(30)
    private var nodes: [String: SimulatedNode] = [:]

    public init(simulation: Simulation) {
        self.simulation = simulation
    }

    public func register(_ node: SimulatedNode) {
        nodes[node.name] = node
        node.onEvent = { [weak self, weak node] event in
            guard let self, let node else { return }
            self.forward(event, from: node)
        }
    }

    public struct Pairing {
        var clientCredentials: IceCredentials
        var gatewayCredentials: IceCredentials
        var presharedKey: SecretKey
    }

    public static func pairing(_ index: Int, presharedKeyByte: UInt8 = 7) -> Pairing {
        Pairing(clientCredentials: IceCredentials(ufrag: "c\(index)uf", password: "client-password-\(index)-xxxxxxxx"),
                gatewayCredentials: IceCredentials(ufrag: "g\(index)uf", password: "gateway-password-\(index)-xxxxxxx"),
                presharedKey: SecretKey(bytes: [UInt8](repeating: presharedKeyByte, count: 32))!)
    }

    func upsertGateway(_ gateway: SimulatedNode, for client: SimulatedNode, _ pairing: Pairing) throws {
        try gateway.node.upsertConnection(client.name, remoteKey: client.node.publicKey, presharedKey: pairing.presharedKey,
                                          local: pairing.gatewayCredentials, remote: pairing.clientCredentials,
                                          now: simulation.now)
        gateway.flush(in: simulation)
    }

    func upsertClient(_ client: SimulatedNode, for gateway: SimulatedNode, _ pairing: Pairing) throws {
        try client.node.upsertConnection(gateway.name, remoteKey: gateway.node.publicKey, presharedKey: pairing.presharedKey,
                                         local: pairing.clientCredentials, remote: pairing.gatewayCredentials,
                                         now: simulation.now)
        client.flush(in: simulation)
    }

    public func connect(_ client: SimulatedNode, _ gateway: SimulatedNode, _ pairing: Pairing = pairing(1)) throws {
        try upsertGateway(gateway, for: client, pairing)
        try upsertClient(client, for: gateway, pairing)
    }

    private func forward(_ event: NodeEvent<String>, from sender: SimulatedNode) {
        switch event {
        case let .newIceCandidate(peer, candidate):
            deliver(candidate, from: sender, to: peer) { node, parsed in
                node.node.addRemoteCandidate(sender.name, parsed, now: self.simulation.now)
            }
        case let .invalidateIceCandidate(peer, candidate):
            deliver(candidate, from: sender, to: peer) { node, parsed in
                node.node.removeRemoteCandidate(sender.name, parsed, now: self.simulation.now)
            }
        case .connectionEstablished, .connectionFailed, .connectionClosed:
            break
        }
    }

    private func deliver(_ candidate: IceCandidate, from sender: SimulatedNode, to peer: String,
                         _ apply: @escaping (SimulatedNode, IceCandidate) -> Void) {
        let text = IceCandidateString.format(candidate)
        simulation.schedule(after: delay) { [weak self] _ in
            guard let self, let receiver = self.nodes[peer],
                  let parsed = try? IceCandidateString.parse(text) else { return }
            apply(receiver, parsed)
            receiver.flush(in: self.simulation)
        }
    }
}
