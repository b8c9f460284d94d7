import IpPacket
import PortalMessages
import SansIO
import Tunnel

/// The reference model of the tunnel state-machine test (Firezone's `tunnel_test`, spec `tunnel-dns.md` §7.1)
/// and of the `TunnelProto` fuzz harness: transitions applied to the real ClientState, GatewayState and Node in
/// the simulation (``ModelWorld``) and to a small model of what they should know, checked after every step.
public enum TunnelModel {
    public enum Transition: Hashable, CustomStringConvertible {
        case ping(resource: Int)
        case udpDns(resource: Int)
        case filteredTcp(resource: Int)
        case pingNonResource
        /// Resolve a name of the DNS resource (index 3), over UDP or TCP, and send UDP to its first proxy IP.
        case dnsTraffic(name: Int, overTcp: Bool = false)
        case addResource(Int)
        case removeResource(Int)
        case rejectAccess(Int)
        case idle(seconds: Int)
        /// The client's network changed: `reset`, then the portal's `init` again.
        case roam
        /// A TCP SYN to the permitted port 80 of a CIDR resource; the resource answers SYN-ACK.
        case tcpFlow(resource: Int)
        /// The client process starts over (new key), keeping its proxy IPs or not, after a sign-out (Goodbye)
        /// or a crash (nothing said), then rejoins the portal.
        case restart(keepingProxyIps: Bool, signOut: Bool)
        /// The relay in use goes silent and the portal says so; the one that was down comes back.
        case relayOutage
        /// The portal connection dropped and both sides rejoined: each gets its `init` again.
        case portalReconnect
        /// A CIDR resource's address changes (10.0.r.0/24 <-> 10.0.r+4.0/24), at the portal and, if it knows
        /// the resource, at the client.
        case moveResource(Int)
        /// `host<n>.svc.test` now resolves to a new address; the next query makes the gateway resolve again.
        case updateDnsRecords(name: Int)

        public var description: String {
            switch self {
            case .ping(let r): "ping(\(r))"
            case .udpDns(let r): "udpDns(\(r))"
            case .filteredTcp(let r): "filteredTcp(\(r))"
            case .pingNonResource: "pingNonResource"
            case let .dnsTraffic(name, overTcp): "dnsTraffic(host\(name).svc.test\(overTcp ? ", TCP" : ""))"
            case .addResource(let r): "addResource(\(r))"
            case .removeResource(let r): "removeResource(\(r))"
            case .rejectAccess(let r): "rejectAccess(\(r))"
            case .idle(let s): "idle(\(s) s)"
            case .roam: "roam"
            case .tcpFlow(let r): "tcpFlow(\(r))"
            case let .restart(keeping, signOut): "restart(keepingProxyIps: \(keeping), signOut: \(signOut))"
            case .relayOutage: "relayOutage"
            case .portalReconnect: "portalReconnect"
            case .moveResource(let r): "moveResource(\(r))"
            case .updateDnsRecords(let name): "updateDnsRecords(host\(name).svc.test)"
            }
        }
    }

    /// What the model expects the system to know.
    struct Model {
        var clientKnows: Set<Int>
        /// Resources the client believes are authorised on the gateway.
        var clientAuthorized: Set<Int> = []
        /// Resources the gateway holds for the client.
        var gatewayAuthorized: Set<Int> = []
        /// Names of the DNS resource whose NAT the gateway confirmed (Active) on the current connection.
        var confirmedNames: Set<Int> = []
        /// CIDR resources whose address moved to 10.0.r+4.0/24.
        var moved: Set<Int> = []
        /// The record generation of each name the gateway last translated to.
        var translatedGeneration: [Int: Int] = [:]

        /// The client forgot its authorisations for the gateway (a Goodbye): its NAT entries go with them.
        mutating func clientForgetsGateway() {
            clientAuthorized = []
            confirmedNames = []
        }
    }

    /// Resources 0–2 are CIDR networks, 3 is the DNS resource `*.svc.test`.
    static let resourceCount = 4
    static let dnsResource = 3

    /// The starting point of a case: the client's resources, and whether direct UDP between client and
    /// gateway is blocked so that everything goes through the relays.
    public struct Topology: CustomStringConvertible {
        var resources: Set<Int>
        var relayedOnly: Bool

        public var description: String { "resources \(resources.sorted())\(relayedOnly ? ", relayed only" : "")" }
    }

    /// A case drawn from `random`: the unit test draws from a seeded generator, the fuzz harness from its input
    /// bytes (``FuzzedChoices``), so both explore the same space of topologies and transitions.
    public static func transitions(using random: inout some RandomNumberGenerator, maxSteps: Int) -> (initial: Topology, steps: [Transition]) {
        let resources = Set((0..<resourceCount).filter { _ in Bool.random(using: &random) })
        let initial = Topology(resources: resources, relayedOnly: Int.random(in: 0..<3, using: &random) == 0)
        let count = Int.random(in: 1...maxSteps, using: &random)
        let steps = (0..<count).map { _ -> Transition in
            let resource = Int.random(in: 0..<resourceCount, using: &random)
            switch Int.random(in: 0..<15, using: &random) {
            case 14:
                return Bool.random(using: &random) ? .moveResource(resource % 3) : .updateDnsRecords(name: Int.random(in: 0...2, using: &random))
            case 10: return .tcpFlow(resource: resource)
            case 11: return .restart(keepingProxyIps: Bool.random(using: &random), signOut: Bool.random(using: &random))
            case 12: return Bool.random(using: &random) ? .relayOutage : .portalReconnect
            case 13:
                return Int.random(in: 0..<3, using: &random) == 0
                    ? .idle(seconds: Int.random(in: 120...700, using: &random)) : .dnsTraffic(name: Int.random(in: 0...2, using: &random))
            case 0, 1: return .ping(resource: resource)
            case 2: return .udpDns(resource: resource)
            case 3: return .filteredTcp(resource: resource)
            case 4:
                return Bool.random(using: &random)
                    ? .pingNonResource : .dnsTraffic(name: Int.random(in: 0...2, using: &random), overTcp: Bool.random(using: &random))
            case 5: return .addResource(resource)
            case 6: return .removeResource(resource)
            case 7: return .rejectAccess(resource)
            case 8: return Int.random(in: 0..<3, using: &random) == 0 ? .roam : .idle(seconds: Int.random(in: 1...30, using: &random))
            default: return .idle(seconds: Int.random(in: 1...30, using: &random))
            }
        }
        return (initial, steps)
    }

    /// Drops transitions one at a time while the case still fails.
    static func shrink(initial: Topology, steps: [Transition]) throws -> (steps: [Transition], failure: String) {
        var current = steps
        var failure = try run(initial: initial, steps: current) ?? "?"
        var index = 0
        while index < current.count {
            var candidate = current
            candidate.remove(at: index)
            if let smaller = try run(initial: initial, steps: candidate) {
                current = candidate
                failure = smaller
            } else {
                index += 1
            }
        }
        return (current, failure)
    }

    /// Runs one case; returns the first broken expectation, or `nil`.
    public static func run(initial: Topology, steps: [Transition]) throws -> String? {
        let world = try ModelWorld(initial: initial.resources, relayedOnly: initial.relayedOnly)
        var model = Model(clientKnows: initial.resources)
        for (number, step) in steps.enumerated() {
            let complaintsBefore = world.complaints
            if let problem = try world.apply(step, to: &model) { return "step \(number) \(step): \(problem)" }
            if let problem = world.checkConnectionLoss(&model) { return "step \(number) \(step): \(problem)" }
            // The analogue of "no ERROR log": no refused portal message and no error from a packet.
            if world.complaints.count > complaintsBefore.count {
                return "step \(number) \(step): \(world.complaints.dropFirst(complaintsBefore.count))"
            }
            let expectedRoutes = Set(model.clientKnows.compactMap { ModelWorld.network($0, moved: model.moved.contains($0)) })
            let actualRoutes = Set(world.client.state.tunConfig?.routes ?? []).subtracting(AddressPlan.fixedRoutes)
            if expectedRoutes != actualRoutes { return "step \(number) \(step): routes \(actualRoutes) != model \(expectedRoutes)" }
            // One site, one gateway: every resource is online exactly while the client is connected to it.
            let expectedStatus: ResourceStatus = model.clientAuthorized.isEmpty ? .unknown : .online
            for resource in model.clientKnows {
                let status = world.client.state.status(of: ModelWorld.id(resource))
                if status != expectedStatus { return "step \(number) \(step): resource \(resource) is \(status), model \(expectedStatus)" }
            }
        }
        return nil
    }
}
