import Dns
import DnsNat
import FlowBroker
import IpPacket
import Noise
import PortalMessages
import SansIO
import SimulatedNetwork
import Tunnel
import Turn

/// A client, a gateway, a TURN relay and the portal's flow broker in one process, on the toolkit's simulated
/// network with a fixed 1 ms latency, on a clock the capture drives. The client and gateway are the real
/// `ClientState` and `GatewayState`; every portal message goes through its wire form.
final class ReplayWorld {
    static let clientSocket = SocketAddress("192.0.2.2:40000")!
    static let gatewaySocket = SocketAddress("198.51.100.1:51820")!
    static let relayIp = IpAddress("203.0.113.3")!
    static let gatewayIpv4 = IPv4Address(100, 64, 0, 1)
    static let gatewayIpv6 = IPv6Address("fd00:2021:1111::1")!
    /// The clock's reading at the capture's first packet.
    static let start = Instant(nanoseconds: 1_000_000_000_000)

    let client: ClientState
    let gateway: GatewayState
    let relay: RelayHost
    let simulation: Simulation
    /// Called for everything that crosses a boundary, in time order.
    var onWire: (Datagram) -> Void = { _ in }
    var onClientTun: (IpPacket) -> Void = { _ in }
    var onGatewayEgress: (IpPacket) -> Void = { _ in }
    var onClientEvent: (ClientEvent) -> Void = { _ in }
    var onGatewayEvent: (GatewayEvent) -> Void = { _ in }
    /// The gateway dropped a packet from the client (`true`) or from a resource (`false`).
    var onGatewayDrop: (GatewayDrop, Bool) -> Void = { _, _ in }
    /// The gateway refused a packet as malformed or unsupported; the flag says whether it came from the client.
    var onGatewayRefusedPacket: (Bool) -> Void = { _ in }
    /// A failure of the pipeline, described.
    var onPipelineError: (String) -> Void = { _ in }
    /// Packets from the client's TUN device that the client refused as malformed or unsupported (the packet's
    /// fault, so a verdict rather than an error; the gateway's refusals go to ``onGatewayRefusedPacket``).
    private(set) var clientRefusedPackets = 0

    private let clientId = ClientId("00000000-0000-4000-8000-00000000c001")!
    private let gatewayId = GatewayId("00000000-0000-4000-8000-00000000d001")!
    private let scenario: ReplayScenario
    private let clientAddresses: (ipv4: IPv4Address, ipv6: IPv6Address)
    private var broker: FlowBroker
    private let policy: ReplayPolicy
    private var hosts: [SideHost] = []
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)

    init(scenario: ReplayScenario, clientIpv4: IPv4Address, clientIpv6: IPv6Address, unixTimeNanoseconds: Int64, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let start = Self.start
        var onProblem: (String) -> Void = { _ in }
        simulation = Simulation(seed: random.next(), unixAnchor: unixTimeNanoseconds) { onProblem($0) }
        simulation.latency = .milliseconds(1)
        self.scenario = scenario
        clientAddresses = (clientIpv4, clientIpv6)
        client = ClientState(privateKey: Self.key(&random), now: start, unixTimeNanoseconds: unixTimeNanoseconds,
                             internetResourceEnabled: scenario.internetResourceEnabled, random: random.split())
        gateway = GatewayState(privateKey: Self.key(&random), now: start, unixTimeNanoseconds: unixTimeNanoseconds,
                               random: random.split())
        relay = RelayHost(id: "00000000-0000-4000-8000-00000000e001", ip: Self.relayIp, secret: "replay-relay-secret",
                          expiresAt: unixTimeNanoseconds / 1_000_000_000 + 86_400)
        let presharedKey = PresharedKey(WireGuardKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })!)
        policy = ReplayPolicy(scenario: scenario, secrets: FlowSecrets(
            presharedKey: presharedKey, client: IceCredentials(ufrag: "rcli", password: "replay-client-ice-password"),
            gateway: IceCredentials(ufrag: "rgwy", password: "replay-gateway-ice-password")))
        broker = FlowBroker(random: random.split())
        onProblem = { [unowned self] problem in pipelineError("simulation", problem) }
        simulation.onSend = { [unowned self] datagram in onWire(datagram) }
        let clientHost = SideHost(world: self, side: .client), gatewayHost = SideHost(world: self, side: .gateway)
        hosts = [clientHost, gatewayHost]
        simulation.attach(clientHost, at: Self.clientSocket.ip)
        simulation.attach(gatewayHost, at: Self.gatewaySocket.ip)
        simulation.attach(relay, at: relay.ip)
    }

    deinit {
        output.deallocate()
    }

    private static func key(_ random: inout SplitMix64) -> SecretKey {
        SecretKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })!
    }

    var now: Instant { simulation.now }

    /// Sends both sides their `init` (the gateway first, as a portal does when the gateway is up first).
    func start() throws {
        broker.gatewayJoined(FlowBroker.Gateway(id: gatewayId, publicKey: WireGuardKey(bytes: gateway.publicKey.bytes)!,
                                                site: scenario.site.id, ipv4: Self.gatewayIpv4, ipv6: Self.gatewayIpv6))
        broker.clientJoined(FlowBroker.Client(id: clientId, actor: "replay", publicKey: WireGuardKey(bytes: client.publicKey.bytes)!,
                                              ipv4: clientAddresses.ipv4, ipv6: clientAddresses.ipv6))
        let relays = [Relay.turn(TurnRelay(id: RelayId(relay.id)!, address: relay.address, username: relay.credentials.username,
                                           password: relay.credentials.password, expiresAt: Int64.max / 2))]
        try toGateway(.initialize(GatewayInit(interface: GatewayInterface(ipv4: Self.gatewayIpv4, ipv6: Self.gatewayIpv6),
                                              relays: relays)))
        let interface = ClientInterface(ipv4: clientAddresses.ipv4, ipv6: clientAddresses.ipv6,
                                        upstreamDo53: scenario.upstreamDns.map(Do53Upstream.init))
        try toClient(.initialize(ClientInit(interface: interface, resources: scenario.clientResources, relays: relays)))
    }

    // MARK: Inputs

    /// A packet the client's OS writes into its TUN device: sent, kept until its flow exists, consumed by the
    /// client's DNS server, or dropped (the reason in the client's statistics).
    func fromClientTun(_ packet: IpPacket) {
        do {
            if let datagram = try client.handleTunPacket(packet, into: output, now: now) {
                send(from: Self.clientSocket, datagram)
            }
        } catch .packet {
            clientRefusedPackets += 1
        } catch {
            pipelineError("client", error)
        }
        flushClient()
    }

    /// A packet a resource sends towards the client: it enters the gateway's TUN device.
    func fromResource(_ packet: inout IpPacket) {
        let before = gateway.statistics.drops
        defer { reportGatewayDrop(since: before, fromClient: false) }
        do {
            if let datagram = try gateway.handleTunPacket(&packet, into: output, now: now) {
                send(from: Self.gatewaySocket, datagram)
            }
        } catch .packet {
            onGatewayRefusedPacket(false)
        } catch {
            pipelineError("gateway", error)
        }
        flushGateway()
    }

    /// Runs everything due up to `deadline`: deliveries, portal messages and both sides' timers.
    func advance(to deadline: Instant) {
        simulation.run(until: deadline)
    }

    /// Runs `action` after the network's latency.
    func later(_ action: @escaping (ReplayWorld) -> Void) {
        simulation.schedule(after: simulation.latency) { [unowned self] _ in action(self) }
    }

    /// The client's recursion came back (the capture's answer, or `nil` for SERVFAIL).
    func answerRecursion(_ pending: ClientDns.PendingQuery, with response: DnsMessage?) {
        client.dnsAnswered(pending, response: response, now: now)
        flushClient()
    }

    /// The gateway's resolution of a DNS resource's domain came back.
    func answerResolution(_ request: GatewayResolveRequest, with addresses: [IpAddress]?) {
        let result: Result<[IpAddress], any Error> = addresses.map { .success($0) } ?? .failure(ReplayInputError("no answer in the capture"))
        gateway.resolved(request, result: result, now: now)
        flushGateway()
    }

    /// The gateway's nameserver answered a query a client sent to its TUN DNS server.
    func answerForwardedDns(_ query: GatewayDnsQuery, with response: DnsMessage?) {
        gateway.dnsAnswered(query, response: response, now: now)
        flushGateway()
    }

    /// How the client reaches the gateway now: `direct`, `relayed` or `none`.
    var pathDescription: String {
        guard let path = client.connections(now: now).first(where: { $0.peer == gatewayId })?.path else { return "none" }
        return path.isRelayed ? "relayed" : "direct"
    }

    // MARK: The network

    /// The client or the gateway as a host on the network; the world does the work.
    private final class SideHost: SimulatedHost {
        enum Side { case client, gateway }
        unowned let world: ReplayWorld
        let side: Side

        init(world: ReplayWorld, side: Side) {
            self.world = world
            self.side = side
        }

        var description: String { side == .client ? "client" : "gateway" }

        func receive(_ datagram: Datagram, in simulation: Simulation) {
            switch side {
            case .client: world.toClientSocket(datagram)
            case .gateway: world.toGatewaySocket(datagram)
            }
        }

        func nextDeadline() -> Instant? {
            side == .client ? world.client.pollTimeout() : world.gateway.pollTimeout()
        }

        func advance(in simulation: Simulation) {
            switch side {
            case .client:
                world.client.handleTimeout(now: simulation.now)
                world.flushClient()
            case .gateway:
                world.gateway.handleTimeout(now: simulation.now)
                world.flushGateway()
            }
        }
    }

    private func send(from socket: SocketAddress, _ datagram: EncryptedDatagram) {
        simulation.send(Datagram(source: datagram.source ?? socket, destination: datagram.destination,
                                 payload: Array(output[0..<datagram.count])))
    }

    private func toClientSocket(_ datagram: Datagram) {
        guard datagram.destination == Self.clientSocket else { return }
        let buffer = PacketBufferPool.shared.take()
        guard datagram.payload.withUnsafeBytes({ buffer.copy(from: $0) }) else { return }
        do {
            if let packet = try client.handleDatagram(local: Self.clientSocket, from: datagram.source, buffer: buffer,
                                                      count: datagram.payload.count, now: now) {
                onClientTun(packet)
            }
        } catch {
            pipelineError("client", error)
        }
        flushClient()
    }

    private func toGatewaySocket(_ datagram: Datagram) {
        guard datagram.destination == Self.gatewaySocket else { return }
        let buffer = PacketBufferPool.shared.take()
        guard datagram.payload.withUnsafeBytes({ buffer.copy(from: $0) }) else { return }
        let before = gateway.statistics.drops
        defer { reportGatewayDrop(since: before, fromClient: true) }
        do {
            if let packet = try gateway.handleDatagram(local: Self.gatewaySocket, from: datagram.source, buffer: buffer,
                                                       count: datagram.payload.count, now: now) {
                onGatewayEgress(packet)
            }
        } catch .packet {
            onGatewayRefusedPacket(true)
        } catch {
            pipelineError("gateway", error)
        }
        flushGateway()
    }

    private func flushClient() {
        while let transmit = client.pollTransmit() {
            simulation.send(Datagram(source: transmit.source ?? Self.clientSocket, destination: transmit.destination, payload: transmit.payload))
        }
        while let message = client.pollPortalMessage() {
            broker.handle(message, from: clientId, policy: policy, unixTime: unixSeconds)
            deliverPortalMessages()
        }
        while let event = client.pollEvent() { onClientEvent(event) }
        while let packet = client.pollTunPacket() { onClientTun(packet) }
    }

    private func flushGateway() {
        while let transmit = gateway.pollTransmit() {
            simulation.send(Datagram(source: transmit.source ?? Self.gatewaySocket, destination: transmit.destination, payload: transmit.payload))
        }
        while let message = gateway.pollPortalMessage() {
            _ = broker.handle(message, from: gatewayId)
            deliverPortalMessages()
        }
        while let event = gateway.pollEvent() { onGatewayEvent(event) }
    }

    private func reportGatewayDrop(since before: [GatewayDrop: Int], fromClient: Bool) {
        for (drop, count) in gateway.statistics.drops where count > before[drop, default: 0] {
            for _ in 0..<(count - before[drop, default: 0]) { onGatewayDrop(drop, fromClient) }
        }
    }

    /// A failure of the pipeline (a typed error that is not about the packet itself, or a refused portal
    /// message), with the side that raised it and when.
    private func pipelineError(_ side: String, _ error: Any) {
        onPipelineError("\(side) at +\(now - Self.start): \(error)")
    }

    // MARK: The portal

    private var unixSeconds: Int64 { simulation.unixAnchor / 1_000_000_000 + (now - Self.start).components.seconds }

    /// The broker's messages, each one latency later and through its wire form.
    private func deliverPortalMessages() {
        while let output = broker.pollOutput() {
            later { world in
                do {
                    switch output {
                    case .toClient(_, let message): try world.toClient(message)
                    case .toGateway(_, let message): try world.toGateway(message)
                    }
                } catch {
                    world.pipelineError("portal", error)
                }
            }
        }
    }

    private func toClient(_ message: ClientIngress) throws {
        client.handle(try ClientIngress(event: message.event, payload: message.payload), now: now)
        flushClient()
    }

    private func toGateway(_ message: GatewayIngress) throws {
        gateway.handle(try GatewayIngress(event: message.event, payload: message.payload), now: now)
        flushGateway()
    }
}

/// The replay's portal: the scenario's resources in its one site, one pair of secrets.
private struct ReplayPolicy: FlowPolicy {
    var scenario: ReplayScenario
    var secrets: FlowSecrets

    func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource? {
        scenario.gatewayResources[id].map { BrokeredResource(sites: [scenario.site.id], gatewayView: $0) }
    }

    func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway, resource: ResourceId, unixTime: Int64,
                 expiresAt: Int64?) -> FlowSecrets { secrets }

    var accessLifetime: Duration? { nil }
}
