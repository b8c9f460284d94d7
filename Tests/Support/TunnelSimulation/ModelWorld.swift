import Dns
import Foundation
import IpPacket
import PortalMessages
import SansIO
import SimulatedNetwork
import Tunnel

/// The simulation the property test drives: a client, a gateway and a relay, three CIDR resources
/// (10.0.r.0/24, filters UDP 53 and ICMP) in one site.
final class ModelWorld {
    let simulation: Simulation
    let client: SimulatedClient
    let gateway: SimulatedGateway
    let portal: StubPortal
    let site: Site
    let relays: [RelayHost]
    let turns: [Relay]
    let interface: ClientInterface
    let gatewayInterface: GatewayInterface
    /// What went wrong inside the simulation itself (a stuck clock, a failed portal message).
    private let problems: ProblemLog
    /// The relay that is silent, if any.
    private var downRelay: Int?

    static func id(_ resource: Int) -> ResourceId {
        ResourceId("aaaaaaaa-0000-4000-8000-00000000000\(resource)")!
    }

    static func network(_ resource: Int, moved: Bool = false) -> IpNetwork? {
        resource == TunnelModel.dnsResource ? nil : IpNetwork("10.0.\(resource + (moved ? 4 : 0)).0/24")!
    }

    /// Resources whose address moved (``TunnelStateMachineTests/Transition/moveResource(_:)``).
    private var moved: Set<Int> = []
    func network(_ resource: Int) -> IpNetwork? { Self.network(resource, moved: moved.contains(resource)) }
    func host(_ resource: Int) -> IpAddress { IpAddress("10.0.\(resource + (moved.contains(resource) ? 4 : 0)).5")! }

    func clientResource(_ resource: Int) -> ClientResource {
        guard let network = network(resource) else {
            return .dns(.init(id: Self.id(resource), address: "*.svc.test", name: "svc", sites: [site], ipStack: .dual))
        }
        return .cidr(.init(id: Self.id(resource), address: network, name: "r\(resource)", sites: [site]))
    }

    /// The DNS records behind the gateway: `host<n>.svc.test` resolves to 198.18.<generation>.<n>.
    private var recordGeneration: [Int: Int] = [:]

    static func realIp(name: Int, generation: Int) -> IpAddress {
        IpAddress("198.18.\(generation).\(name)")!
    }

    private func resolve(_ domain: DnsName) -> [IpAddress] {
        guard domain.description.hasPrefix("host"), let name = Int(String(domain.description.dropFirst(4).prefix(1))) else { return [] }
        return [Self.realIp(name: name, generation: recordGeneration[name] ?? 0)]
    }

    init(initial: Set<Int>, relayedOnly: Bool = false) throws {
        let problems = ProblemLog()
        self.problems = problems
        simulation = Simulation(seed: 5) { problems.entries.append($0) }
        lastTraffic = simulation.now
        relays = (1...2).map { RelayHost(id: "2b1a4f7e-0000-4000-8000-00000000000\($0)", ip: IpAddress("192.0.2.\($0)")!) }
        for relay in relays { simulation.attach(relay, at: relay.ip) }
        client = SimulatedClient(socket: SocketAddress("203.0.113.10:41000")!, in: simulation)
        gateway = SimulatedGateway(socket: SocketAddress("198.51.100.20:51820")!, in: simulation)
        gateway.kernel = Self.kernel
        portal = StubPortal(simulation: simulation, client: client, gateway: gateway)
        site = Site(id: portal.siteId, name: "site")
        for resource in 0..<TunnelModel.resourceCount {
            guard let network = Self.network(resource) else {
                portal.gatewayResources[Self.id(resource)] = .dns(id: Self.id(resource), address: "*.svc.test", name: "svc",
                                                                  filters: [.udp(53...53), .udp(443...443), .icmp])
                continue
            }
            portal.gatewayResources[Self.id(resource)] = .cidr(id: Self.id(resource), address: network,
                                                               name: "r\(resource)", filters: [.udp(53...53), .tcp(80...80), .icmp])
        }
        turns = relays.map { relay in
            Relay.turn(TurnRelay(id: RelayId(relay.id)!, address: relay.address, username: relay.credentials.username,
                                 password: relay.credentials.password, expiresAt: 1_900_000_000))
        }
        gatewayInterface = GatewayInterface(ipv4: portal.gatewayIpv4, ipv6: IPv6Address("fd00:2021:1111::1")!)
        try gateway.deliver(.initialize(GatewayInit(interface: gatewayInterface, relays: turns)), in: simulation)
        interface = ClientInterface(ipv4: portal.clientIpv4, ipv6: IPv6Address("fd00:2021:1111::2")!,
                                    upstreamDo53: [Do53Upstream(ip: IpAddress("1.1.1.1")!)])
        try client.deliver(.initialize(ClientInit(interface: interface, resources: initial.sorted().map(clientResource),
                                                  relays: turns)), in: simulation)
        let clientIp = client.socket.ip, gatewayIp = gateway.socket.ip
        let relayIps = relays.map(\.ip)
        simulation.dropRules.append { [unowned self] datagram in
            if let down = downRelay, datagram.source.ip == relayIps[down] || datagram.destination.ip == relayIps[down] { return true }
            return relayedOnly && Set([datagram.source.ip, datagram.destination.ip]) == [clientIp, gatewayIp]
        }
        gateway.resolver = { [unowned self] in resolve($0) }
        simulation.run(for: .seconds(1))
    }

    /// The resources behind the gateway: they echo UDP and ICMP and answer a TCP SYN with a SYN-ACK.
    static func kernel(_ packet: IpPacket) -> IpPacket? {
        guard let tcp = packet.tcp else { return ResourceHost.echo(packet) }
        return try? IpPacket.tcp(source: packet.destination, destination: packet.source, sourcePort: tcp.destinationPort,
                                 destinationPort: tcp.sourcePort, sequenceNumber: 1000, acknowledgmentNumber: tcp.sequenceNumber &+ 1,
                                 flags: tcp.flags.contains(.syn) ? [.syn, .ack] : [.ack], payload: [UInt8]())
    }

    /// Gateway errors that are right in their situation (a client that missed the gateway's Goodbye).
    private var toleratedGatewayErrors: Set<Int> = []

    /// Refused portal messages and packet errors on either side, in order of kind.
    var complaints: [String] {
        problems.entries + client.refusals + client.errors.map { "client: \($0)" }
            + gateway.errors.indices.filter { !toleratedGatewayErrors.contains($0) }.map { "gateway: \(gateway.errors[$0])" }
            + gateway.events.compactMap { if case .refused(let reason) = $0 { "gateway refused: \(reason)" } else { nil } }
            + gateway.flowProblems
    }

    /// After a relay outage, which may end the connection: the model follows.
    private func followConnectionLoss(_ model: inout TunnelModel.Model) {
        if client.state.connectionCount == 0 { model.clientForgetsGateway() }
    }

    /// After every step: a connection the model expects may only have ended by WireGuard's expiry (540 s
    /// without a new session; traffic keeps sessions younger than 170 s, so at least 370 s of silence come
    /// first). ICE keepalives hold an idle connection otherwise. The model follows an expiry.
    func checkConnectionLoss(_ model: inout TunnelModel.Model) -> String? {
        guard client.state.connectionCount == 0, !model.clientAuthorized.isEmpty else { return nil }
        let silence = simulation.now - lastTraffic
        guard silence >= .seconds(370) else { return "the connection ended \(silence) after the last traffic" }
        model.clientForgetsGateway()
        return nil
    }

    private var source: IpAddress { .v4(portal.clientIpv4) }
    private var sequence: UInt16 = 0
    /// When the client last sent a packet into the tunnel.
    private var lastTraffic: Instant
    /// The first proxy IP each `host<n>.svc.test` was given; it must not change while the client keeps its records.
    private var proxyIps: [Int: IpAddress] = [:]

    /// Applies a transition to the system and the model; returns what did not match.
    func apply(_ step: TunnelModel.Transition, to model: inout TunnelModel.Model) throws -> String? {
        switch step {
        case .ping(let resource):
            sequence += 1
            let packet = try IpPacket.icmpEchoRequest(source: source, destination: host(resource), identifier: 1,
                                                      sequence: sequence, payload: [1, 2, 3])
            return expectDelivery(packet, resource: resource, model: &model)
        case .udpDns(let resource):
            sequence += 1
            let packet = try IpPacket.udp(source: source, destination: host(resource), sourcePort: 20000 + sequence,
                                          destinationPort: 53, payload: [0xAB])
            return expectDelivery(packet, resource: resource, model: &model)
        case .filteredTcp(let resource):
            sequence += 1
            let packet = try IpPacket.tcp(source: source, destination: host(resource), sourcePort: 30000 + sequence,
                                          destinationPort: 22, flags: [.syn], payload: [UInt8]())
            return expectProhibited(packet, resource: resource, model: &model)
        case .pingNonResource:
            let packet = try IpPacket.icmpEchoRequest(source: source, destination: IpAddress("192.168.50.1")!, identifier: 1,
                                                      sequence: 1, payload: [])
            return expectNothing(packet)
        case let .dnsTraffic(name, overTcp):
            return try dnsTraffic(name: name, overTcp: overTcp, model: &model)
        case .addResource(let resource):
            model.clientKnows.insert(resource)
            try client.deliver(.resourceCreatedOrUpdated(clientResource(resource)), in: simulation)
            simulation.run(for: .milliseconds(100))
        case .removeResource(let resource):
            let wasKnown = model.clientKnows.remove(resource) != nil
            if wasKnown, model.clientAuthorized.remove(resource) != nil, model.clientAuthorized.isEmpty {
                model.gatewayAuthorized = []  // the client's Goodbye ends the gateway's state
            }
            if resource == TunnelModel.dnsResource { model.confirmedNames = [] }
            try client.deliver(.resourceDeleted(Self.id(resource)), in: simulation)
            simulation.run(for: .milliseconds(100))
        case .rejectAccess(let resource):
            let gatewayHasSession = gateway.state.connections(now: simulation.now).contains { $0.peer == portal.clientId && $0.hasSession }
            let lastOne = model.gatewayAuthorized.remove(resource) != nil && model.gatewayAuthorized.isEmpty
            if lastOne { model.clientForgetsGateway() }  // the gateway's Goodbye ends the client's authorisations
            try gateway.deliver(.rejectAccess(AccessKey(clientId: portal.clientId, resourceId: Self.id(resource))), in: simulation)
            simulation.run(for: .milliseconds(100))
            if lastOne, !gatewayHasSession {
                // After 180 s without traffic there is no WireGuard session to carry the Goodbye (as in
                // Firezone). The client finds out when its idle ICE checks go unanswered: the next one within
                // 25 s, failure 100 s later, then 2 s of "disconnected". Until then the gateway rightly refuses
                // the handshakes and data the client still sends it.
                let errorsBefore = gateway.errors.count
                simulation.run(for: .seconds(130))
                for index in errorsBefore..<gateway.errors.count {
                    guard case .node(let error) = gateway.errors[index] else { continue }
                    switch error {
                    case .unknownPeerKey, .unknownSessionIndex: toleratedGatewayErrors.insert(index)
                    default: break
                    }
                }
                if client.state.connectionCount > 0 { return "the client never noticed the gateway closed" }
            }
        case .idle(let seconds):
            simulation.run(for: .seconds(Int64(seconds)))
        case .roam:
            model.clientForgetsGateway()
            client.state.reset(now: simulation.now)
            client.rebind()
            client.flush(in: simulation)
            try rejoinClient(model)
        case .tcpFlow(let resource):
            sequence += 1
            let packet = try IpPacket.tcp(source: source, destination: host(resource), sourcePort: 30000 + sequence,
                                          destinationPort: 80, sequenceNumber: 7, flags: [.syn], payload: [UInt8]())
            return expectDelivery(packet, resource: resource, model: &model)
        case let .restart(keepingProxyIps, signOut):
            // The Goodbye goes only on a session that can still send (e981e6a); without it the gateway keeps the
            // client's authorisations, and the new connection after the restart finds them still there.
            let saysGoodbye = signOut && client.state.connections(now: simulation.now).contains(where: \.canSendWithoutHandshake)
            if saysGoodbye { model.gatewayAuthorized = [] }
            model.clientForgetsGateway()
            if !keepingProxyIps { proxyIps = [:] }
            client.restart(keepingProxyIps: keepingProxyIps, signOut: signOut, in: simulation)
            simulation.run(for: .milliseconds(100))
            try rejoinClient(model)
        case .relayOutage:
            let failing = downRelay.map { 1 - $0 } ?? Int(sequence % 2)
            downRelay = failing
            let presence = RelaysPresence(disconnectedIds: [RelayId(relays[failing].id)!], connected: [turns[1 - failing]])
            try client.deliver(.relaysPresence(presence), in: simulation)
            try gateway.deliver(.relaysPresence(presence), in: simulation)
            simulation.run(for: .seconds(12))
            followConnectionLoss(&model)
        case .updateDnsRecords(let name):
            recordGeneration[name, default: 0] += 1
        case .moveResource(let resource):
            guard let old = network(resource) else { return nil }
            if moved.remove(resource) == nil { moved.insert(resource) }
            model.moved = moved
            let new = network(resource)!
            portal.gatewayResources[Self.id(resource)] = .cidr(id: Self.id(resource), address: new, name: "r\(resource)",
                                                               filters: [.udp(53...53), .tcp(80...80), .icmp])
            guard model.clientKnows.contains(resource) else { return nil }
            // A new address is a new resource to the client: the old one goes (a Goodbye when it was the last on
            // the gateway), the new one is added.
            if model.clientAuthorized.remove(resource) != nil, model.clientAuthorized.isEmpty { model.gatewayAuthorized = [] }
            try client.deliver(.resourceCreatedOrUpdated(clientResource(resource)), in: simulation)
            simulation.run(for: .milliseconds(100))
            let routes = client.state.tunConfig?.routes ?? []
            if routes.contains(old) || !routes.contains(new) { return "routes after the move: \(routes)" }
        case .portalReconnect:
            let authorizations = model.gatewayAuthorized.sorted().map {
                AccessExpiry(clientId: portal.clientId, resourceId: Self.id($0), expiresAt: 1_900_000_000)
            }
            try gateway.deliver(.initialize(GatewayInit(interface: gatewayInterface, relays: liveTurns, authorizations: authorizations)),
                                in: simulation)
            try rejoinClient(model)
        }
        return nil
    }

    /// The relays the portal currently announces.
    private var liveTurns: [Relay] {
        turns.indices.filter { $0 != downRelay }.map { turns[$0] }
    }

    /// The client joins the portal again and receives its `init`.
    private func rejoinClient(_ model: TunnelModel.Model) throws {
        try client.deliver(.initialize(ClientInit(interface: interface, resources: model.clientKnows.sorted().map(clientResource),
                                                  relays: liveTurns)), in: simulation)
        simulation.run(for: .seconds(1))
    }

    /// Resolves `host<n>.svc.test` at the sentinel, then sends to the first proxy IP it got.
    private func dnsTraffic(name: Int, overTcp: Bool, model: inout TunnelModel.Model) throws -> String? {
        var flags = DnsFlags()
        flags.recursionDesired = true
        sequence += 1
        let domain = DnsName("host\(name).svc.test")!
        let query = DnsMessage(id: sequence, flags: flags, questions: [DnsQuestion(name: domain, type: .a)])
        guard let sentinel = client.state.tunConfig?.dnsServers.first else { return "no DNS server configured" }
        let answer: DnsMessage?
        if overTcp {
            answer = try tcpQuery(query, to: sentinel)
        } else {
            let before = client.toTun.count
            client.fromTun(try IpPacket.udp(source: source, destination: sentinel, sourcePort: 5353, destinationPort: 53,
                                            payload: query.encode()), in: simulation)
            let answers = client.toTun[before...]
            guard answers.count <= 1 else { return "expected at most one answer, got \(answers.map(\.description))" }
            answer = answers.first.flatMap { packet in packet.udp.flatMap { try? DnsMessage(decoding: packet.bytes(in: $0.payloadRange)) } }
        }
        guard model.clientKnows.contains(TunnelModel.dnsResource) else {
            // Not a resource: the query goes to the app to recurse, nothing is answered locally.
            return answer == nil ? nil : "expected no local answer for \(domain), got \(answer!)"
        }
        guard let message = answer, message.id == query.id, case .a(let first)? = message.answers.first?.data else {
            return "expected a local answer with proxy IPs for \(domain), got \(String(describing: answer))"
        }
        // Stable proxy IPs: the same for a name over both transports, across roaming and restarts that keep them.
        if let known = proxyIps[name], known != .v4(first) {
            return "\(domain) moved from proxy IP \(known) to \(first)"
        }
        proxyIps[name] = .v4(first)
        let proxy = IpAddress.v4(first)
        let packet = try IpPacket.udp(source: source, destination: proxy, sourcePort: 40000 + sequence, destinationPort: 443,
                                      payload: [0xCD])
        let (atGateway, atClient) = send(packet)
        let resource = TunnelModel.dnsResource
        if !model.clientAuthorized.contains(resource) {
            model.clientAuthorized.insert(resource)
            model.gatewayAuthorized.insert(resource)
        }
        if model.gatewayAuthorized.contains(resource) {
            model.confirmedNames.insert(name)
            // The current address, or the one before a record update: the query re-resolves, and a packet
            // that passes while that runs still uses the old translation.
            let generation = recordGeneration[name] ?? 0
            let acceptable = Set([generation, model.translatedGeneration[name] ?? generation].map { Self.realIp(name: name, generation: $0) })
            model.translatedGeneration[name] = generation
            guard atGateway.count == 1, acceptable.contains(atGateway[0].destination) else {
                return "expected the packet at one of \(acceptable) behind the gateway, got \(atGateway.map(\.description))"
            }
            guard atClient.count == 1, atClient[0].source == proxy else {
                return "expected one reply from the proxy IP \(proxy), got \(atClient.map(\.description))"
            }
            return nil
        }
        // The gateway no longer holds the resource. A confirmed name's packet passes and is prohibited (and its
        // NAT refresh is answered Inactive); a new name's AssignedIps is answered Inactive, which discards it.
        guard model.confirmedNames.remove(name) != nil else {
            return atGateway.isEmpty && atClient.isEmpty
                ? nil : "expected nothing (Inactive), got gateway \(atGateway.map(\.description)), client \(atClient.map(\.description))"
        }
        guard atGateway.isEmpty, atClient.count == 1, atClient[0].icmp?.type == 3, atClient[0].icmp?.code == 13 else {
            return "expected ICMP prohibited, got gateway \(atGateway.map(\.description)), client \(atClient.map(\.description))"
        }
        return nil
    }

    /// A DNS query over TCP to `sentinel:53` from a scripted client (handshake, one framed query, close); the
    /// answer, or `nil` when none came on the connection.
    private func tcpQuery(_ query: DnsMessage, to sentinel: IpAddress) throws -> DnsMessage? {
        let port = 50_000 + sequence
        var ownSequence: UInt32 = 7_000
        func segment(_ flags: TcpFlags, acknowledging: UInt32, payload: [UInt8] = []) throws -> IpPacket {
            try IpPacket.tcp(source: source, destination: sentinel, sourcePort: port, destinationPort: 53, sequenceNumber: ownSequence,
                             acknowledgmentNumber: acknowledging, flags: flags, window: 65_535, payload: payload)
        }
        func segmentsSince(_ mark: Int) -> [IpPacket] {
            client.toTun[mark...].filter { $0.tcp?.destinationPort == port }
        }
        var mark = client.toTun.count
        client.fromTun(try segment([.syn], acknowledging: 0), in: simulation)
        guard let synAck = segmentsSince(mark).last?.tcp, synAck.flags == [.syn, .ack] else { return nil }
        ownSequence += 1
        let serverStart = synAck.sequenceNumber &+ 1
        let framed = DnsTcpFraming.frame(query.encode())
        mark = client.toTun.count
        client.fromTun(try segment([.ack, .psh], acknowledging: serverStart, payload: framed), in: simulation)
        ownSequence += UInt32(framed.count)
        let stream = segmentsSince(mark).flatMap { packet in packet.tcp.map { Array(packet.bytes(in: $0.payloadRange)) } ?? [] }
        guard let (bytes, _) = DnsTcpFraming.nextMessage(in: stream) else { return nil }
        mark = client.toTun.count
        client.fromTun(try segment([.fin, .ack], acknowledging: serverStart &+ UInt32(stream.count)), in: simulation)
        ownSequence += 1
        if let fin = segmentsSince(mark).compactMap(\.tcp).first(where: { $0.flags.contains(.fin) }) {
            client.fromTun(try segment([.ack], acknowledging: fin.sequenceNumber &+ 1), in: simulation)
        }
        return try? DnsMessage(decoding: bytes)
    }

    /// A permitted packet: it must reach the resource (and its reply the client) if the gateway holds the
    /// resource or will be asked for it; otherwise the gateway answers "prohibited".
    private func expectDelivery(_ packet: IpPacket, resource: Int, model: inout TunnelModel.Model) -> String? {
        // 10.0.3.0/24 belongs to no resource: index 3 is the DNS resource.
        guard model.clientKnows.contains(resource), network(resource) != nil else { return expectNothing(packet) }
        let (atGateway, atClient) = send(packet)
        if !model.clientAuthorized.contains(resource) {
            model.clientAuthorized.insert(resource)
            model.gatewayAuthorized.insert(resource)
        }
        if model.gatewayAuthorized.contains(resource) {
            guard atGateway.map(\.destination) == [packet.destination] else {
                return "expected the packet at the gateway's TUN, got \(atGateway.map(\.description))"
            }
            guard atClient.count == 1, atClient[0].source == packet.destination, (try? atClient[0].icmpError()) == nil else {
                return "expected one reply from \(packet.destination), got \(atClient.map(\.description))"
            }
            return nil
        }
        guard atGateway.isEmpty, atClient.count == 1, atClient[0].icmp?.type == 3, atClient[0].icmp?.code == 13 else {
            return "expected ICMP prohibited (gateway no longer holds the resource), got gateway \(atGateway.map(\.description)), client \(atClient.map(\.description))"
        }
        return nil
    }

    private func expectProhibited(_ packet: IpPacket, resource: Int, model: inout TunnelModel.Model) -> String? {
        guard model.clientKnows.contains(resource), network(resource) != nil else { return expectNothing(packet) }
        let (atGateway, atClient) = send(packet)
        if !model.clientAuthorized.contains(resource) {
            model.clientAuthorized.insert(resource)
            model.gatewayAuthorized.insert(resource)
        }
        guard atGateway.isEmpty, atClient.count == 1, atClient[0].icmp?.type == 3, atClient[0].icmp?.code == 13 else {
            return "expected only ICMP prohibited, got gateway \(atGateway.map(\.description)), client \(atClient.map(\.description))"
        }
        return nil
    }

    private func expectNothing(_ packet: IpPacket) -> String? {
        let (atGateway, atClient) = send(packet)
        guard atGateway.isEmpty, atClient.isEmpty else {
            return "expected nothing, got gateway \(atGateway.map(\.description)), client \(atClient.map(\.description))"
        }
        return nil
    }

    /// Sends from the client's TUN device and settles; returns what appeared on either TUN device.
    private func send(_ packet: IpPacket) -> (atGateway: [IpPacket], atClient: [IpPacket]) {
        let gatewayBefore = gateway.toTun.count, clientBefore = client.toTun.count
        let sentAt = simulation.now
        client.fromTun(packet, in: simulation)
        simulation.run(for: .seconds(3))
        let crossed = (Array(gateway.toTun[gatewayBefore...]), Array(client.toTun[clientBefore...]))
        if !crossed.0.isEmpty || !crossed.1.isEmpty { lastTraffic = sentAt }
        return crossed
    }
}

/// Collects the simulation's own problems for ``ModelWorld/complaints``.
final class ProblemLog {
    var entries: [String] = []
}
