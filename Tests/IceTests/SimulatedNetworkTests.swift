import Ice
import SansIO
import TestSupport
import Testing

/// A tiny simulated Internet: hosts behind NATs, a relay, loss, all on a virtual clock.
final class SimulatedNetwork {
    enum NatKind {
        case none
        /// Endpoint-independent mapping (one public port per private one), address-and-port-dependent filtering.
        case endpointIndependent(publicIp: IpAddress)
        /// A new public port per destination, replies only from that destination.
        case symmetric(publicIp: IpAddress)
    }

    struct Nat {
        var kind: NatKind
        /// Private base → destination → public source.
        var mappings: [SocketAddress: [SocketAddress: SocketAddress]] = [:]
        var nextPort: UInt16 = 40000
        /// Public address → private base, for port forwards.
        var forwards: [SocketAddress: SocketAddress] = [:]
    }

    let client: IceAgent
    let gateway: IceAgent
    var nats: [ObjectIdentifier: Nat] = [:]
    /// Relayed address → (owner, its base): packets sent to it are delivered to the owner "from" the sender.
    var relays: [SocketAddress: IceAgent] = [:]
    var now = Instant(nanoseconds: 1_000_000_000)
    var lossRate = 0.0
    var directBlocked = false
    var random = SplitMix64(seed: 7)
    var events: [(IceAgent, IceEvent)] = []

    init(clientNat: NatKind, gatewayNat: NatKind) {
        let clientCredentials = IceCredentials(ufrag: "cccc", password: "clientpasswordclientpa")
        let gatewayCredentials = IceCredentials(ufrag: "gggg", password: "gatewaypasswordgatewayp")
        client = IceAgent(controlling: true, local: clientCredentials, remote: gatewayCredentials, timings: .clientDefault,
                          random: SplitMix64(seed: 1))
        gateway = IceAgent(controlling: false, local: gatewayCredentials, remote: clientCredentials, timings: .gatewayDefault,
                           random: SplitMix64(seed: 2))
        nats[ObjectIdentifier(client)] = Nat(kind: clientNat)
        nats[ObjectIdentifier(gateway)] = Nat(kind: gatewayNat)
    }

    func other(_ agent: IceAgent) -> IceAgent { agent === client ? gateway : client }

    /// Where a packet from `base` of `agent` to `destination` appears to come from on the Internet.
    func translateOutbound(_ agent: IceAgent, base: SocketAddress, destination: SocketAddress) -> SocketAddress {
        var nat = nats[ObjectIdentifier(agent)]!
        defer { nats[ObjectIdentifier(agent)] = nat }
        if let forward = nat.forwards.first(where: { $0.value == base }) {
            return forward.key  // a port forward is a static mapping, both ways
        }
        switch nat.kind {
        case .none:
            return base
        case .endpointIndependent(let ip):
            let mapped = SocketAddress(ip: ip, port: base.port)
            nat.mappings[base, default: [:]][destination] = mapped
            return mapped
        case .symmetric(let ip):
            if let existing = nat.mappings[base]?[destination] { return existing }
            nat.nextPort += 1
            let mapped = SocketAddress(ip: ip, port: nat.nextPort)
            nat.mappings[base, default: [:]][destination] = mapped
            return mapped
        }
    }

    /// The private base a packet to `address` from `source` reaches, if the NAT lets it in.
    func translateInbound(_ agent: IceAgent, address: SocketAddress, source: SocketAddress) -> SocketAddress? {
        let nat = nats[ObjectIdentifier(agent)]!
        if case .none = nat.kind { return agent.localCandidates.contains { $0.base == address } ? address : nil }
        if let forwarded = nat.forwards[address] { return forwarded }
        for (base, byDestination) in nat.mappings where byDestination[source] == address {
            return base
        }
        return nil
    }

    func owner(of address: SocketAddress) -> IceAgent? {
        for agent in [client, gateway] {
            let nat = nats[ObjectIdentifier(agent)]!
            switch nat.kind {
            case .none: if agent.localCandidates.contains(where: { $0.base == address }) { return agent }
            case .endpointIndependent(let ip), .symmetric(let ip): if address.ip == ip { return agent }
            }
        }
        return nil
    }

    func send(_ transmit: IceTransmit, from agent: IceAgent) {
        guard Double.random(in: 0..<1, using: &random) >= lossRate else { return }
        let destination = transmit.destination
        // "Direct UDP blocked" blocks peer-to-peer packets, not packets to or from the relay.
        let viaRelay = transmit.source.kind == .relayed || relays[destination] != nil
        guard !directBlocked || viaRelay else { return }
        let source = transmit.source.kind == .relayed
            ? transmit.source.address  // the relay sends from the relayed address
            : translateOutbound(agent, base: transmit.source.base, destination: destination)
        if let relayOwner = relays[destination] {
            relayOwner.handle(transmit.payload, from: source, to: destination, now: now)
            return
        }
        guard let receiver = owner(of: destination), receiver !== agent,
              let base = translateInbound(receiver, address: destination, source: source)
        else { return }
        receiver.handle(transmit.payload, from: source, to: base, now: now)
    }

    func run(for duration: Duration) {
        let end = now + duration
        while now <= end {
            for agent in [client, gateway] {
                agent.handleTimeout(now: now)
                while let transmit = agent.pollTransmit() { send(transmit, from: agent) }
                while let event = agent.pollEvent() { events.append((agent, event)) }
            }
            for agent in [client, gateway] {
                while let transmit = agent.pollTransmit() { send(transmit, from: agent) }
            }
            let next = [client.pollTimeout(), gateway.pollTimeout()].compactMap { $0 }.min() ?? end
            now = max(now + .milliseconds(1), min(next, end + .milliseconds(1)))
        }
    }

    func nominations(of agent: IceAgent) -> [SocketAddress] {
        events.compactMap { owner, event in
            guard owner === agent, case .nominated(_, let destination) = event else { return nil }
            return destination
        }
    }
}

@Suite struct SimulatedNetworkTests {
    let clientHost = SocketAddress("192.168.1.2:52625")!
    let gatewayPublic = SocketAddress("203.0.113.2:52625")!

    /// The client behind an endpoint-independent NAT reaches a public gateway; the gateway learns the client's
    /// public address as a peer-reflexive (or its signalled srflx) candidate.
    @Test func serverReflexiveBehindAnEndpointIndependentNat() {
        let network = SimulatedNetwork(clientNat: .endpointIndependent(publicIp: IpAddress("198.51.100.1")!), gatewayNat: .none)
        let host = network.client.addLocalCandidate(kind: .host, address: clientHost)!
        let gatewayHost = network.gateway.addLocalCandidate(kind: .host, address: gatewayPublic)!
        network.gateway.addRemoteCandidate(host)
        network.gateway.addRemoteCandidate(IceCandidate(kind: .serverReflexive, address: SocketAddress("198.51.100.1:52625")!,
                                                        base: clientHost, priority: 1_694_498_559))
        network.client.addRemoteCandidate(gatewayHost)
        network.run(for: .seconds(3))
        #expect(network.nominations(of: network.client) == [gatewayPublic])
        #expect(network.nominations(of: network.gateway) == [SocketAddress("198.51.100.1:52625")!])
        // The gateway's answers show the client its NAT mapping: a local peer-reflexive candidate.
        #expect(network.events.contains { $0.0 === network.client && $0.1 == .localPeerReflexive(SocketAddress("198.51.100.1:52625")!) })
        #expect(network.client.localCandidates.contains { $0.kind == .peerReflexive && $0.base == clientHost })
    }

    /// A client with a host and a relay candidate, a public gateway, and direct UDP blocked.
    func relayScenario() -> (SimulatedNetwork, relay: IceCandidate) {
        let network = SimulatedNetwork(clientNat: .none, gatewayNat: .none)
        network.directBlocked = true
        let host = network.client.addLocalCandidate(kind: .host, address: clientHost)!
        let relay = network.client.addLocalCandidate(kind: .relayed, address: SocketAddress("192.0.2.50:50000")!, relayBase: clientHost)!
        network.relays[relay.address] = network.client
        let gatewayHost = network.gateway.addLocalCandidate(kind: .host, address: gatewayPublic)!
        network.gateway.addRemoteCandidate(host)
        network.gateway.addRemoteCandidate(relay)
        network.client.addRemoteCandidate(gatewayHost)
        return (network, relay)
    }

    /// Direct UDP is blocked both ways: only the relayed pair connects.
    @Test func relayOnlyWhenDirectUdpIsBlocked() {
        let (network, relay) = relayScenario()
        network.run(for: .seconds(3))
        #expect(network.client.nominated?.local.kind == .relayed)
        #expect(network.nominations(of: network.gateway) == [relay.address])
    }

    /// Behind a symmetric NAT the signalled srflx port is useless, but the gateway port-forwards its listen
    /// port: the optimistic candidate (srflx IP × host port) rescues a direct path.
    @Test func optimisticCandidateRescuesASymmetricNat() {
        for useOptimistic in [false, true] {
            let network = SimulatedNetwork(clientNat: .symmetric(publicIp: IpAddress("198.51.100.1")!),
                                           gatewayNat: .symmetric(publicIp: IpAddress("198.51.100.2")!))
            let gatewayPrivate = SocketAddress("192.168.2.2:52625")!
            network.nats[ObjectIdentifier(network.gateway)]!.forwards[SocketAddress("198.51.100.2:52625")!] = gatewayPrivate
            let clientCandidate = network.client.addLocalCandidate(kind: .host, address: clientHost)!
            let gatewayHost = network.gateway.addLocalCandidate(kind: .host, address: gatewayPrivate)!
            network.gateway.addRemoteCandidate(clientCandidate)
            // The gateway's srflx came from its mapping towards a relay: a port nobody else may use.
            let gatewaySrflx = IceCandidate(kind: .serverReflexive, address: SocketAddress("198.51.100.2:41999")!,
                                            base: gatewayPrivate, priority: 1_694_498_559)
            var remote = [gatewayHost, gatewaySrflx]
            if useOptimistic { remote += OptimisticCandidates.derive(from: remote) }
            for candidate in remote { network.client.addRemoteCandidate(candidate) }
            network.run(for: .seconds(3))
            if useOptimistic {
                #expect(network.client.nominated?.remote == SocketAddress("198.51.100.2:52625")!)
            } else {
                #expect(network.client.nominated == nil, "without the optimistic candidate there is no path")
            }
        }
    }

    /// 30 % of packets lost in both directions: the agents still connect, well within the ICE timeout.
    @Test func thirtyPercentLossStillConnects() {
        let network = SimulatedNetwork(clientNat: .none, gatewayNat: .none)
        network.lossRate = 0.3
        let host = network.client.addLocalCandidate(kind: .host, address: clientHost)!
        let gatewayHost = network.gateway.addLocalCandidate(kind: .host, address: gatewayPublic)!
        network.gateway.addRemoteCandidate(host)
        network.client.addRemoteCandidate(gatewayHost)
        network.run(for: .seconds(5))
        #expect(network.client.nominated != nil && network.gateway.nominated != nil)
    }

    /// The relayed pair wins first; when direct UDP opens, the controlling side re-nominates the better
    /// host pair without a restart.
    @Test func renominationWhenABetterPairSucceedsLater() {
        let (network, relay) = relayScenario()
        network.run(for: .seconds(2))
        #expect(network.client.nominated?.local.kind == .relayed)
        network.directBlocked = false
        network.run(for: .seconds(3))
        #expect(network.client.nominated?.local.kind == .host, "re-nominated the direct pair")
        #expect(network.nominations(of: network.gateway) == [relay.address, clientHost])
    }

    /// A caller that sleeps exactly until `pollTimeout()` must find work there: a check to send, or a later
    /// deadline. With lossy checks (answered ones followed by unanswered ones) the two once disagreed.
    @Test func pollTimeoutAlwaysNamesAnInstantWithWork() {
        let network = SimulatedNetwork(clientNat: .none, gatewayNat: .none)
        network.lossRate = 0.5
        let host = network.client.addLocalCandidate(kind: .host, address: clientHost)!
        let gatewayHost = network.gateway.addLocalCandidate(kind: .host, address: gatewayPublic)!
        network.gateway.addRemoteCandidate(host)
        network.client.addRemoteCandidate(gatewayHost)
        var wastedWakeups = 0
        for _ in 0..<3000 {
            for agent in [network.client, network.gateway] {
                guard let due = agent.pollTimeout(), due <= network.now else { continue }
                agent.handleTimeout(now: network.now)
                var sent = 0
                while let transmit = agent.pollTransmit() {
                    sent += 1
                    network.send(transmit, from: agent)
                }
                while agent.pollEvent() != nil {}
                if sent == 0, let again = agent.pollTimeout(), again <= network.now { wastedWakeups += 1 }
            }
            guard let next = [network.client.pollTimeout(), network.gateway.pollTimeout()].compactMap({ $0 }).min() else { break }
            network.now = max(network.now, next)
        }
        #expect(wastedWakeups == 0)
    }
}
