import Dns
import DnsNat
import FoundationEssentials
import IpPacket
import Noise
import PortalMessages
import SansIO
import Tunnel
import Turn

/// A client, a gateway, a TURN relay and a minimal portal in one process, on an in-memory network with a
/// fixed 1 ms latency, on a clock the capture drives. The client and gateway are the real `ClientState` and
/// `GatewayState`; every portal message goes through its wire form.
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
    let relay: TurnServer
    private(set) var now: Instant
    /// Called for everything that crosses a boundary, in time order.
    var onWire: (TurnDatagram) -> Void = { _ in }
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
    /// Set when a participant kept asking for its timer at one instant without progress.
    private(set) var stuckAt: Instant?

    private let latency = Duration.milliseconds(1)
    /// Actions due in time order: every delay is `latency`, so appending keeps the queue sorted.
    /// An action gets the world as its argument rather than capturing it, so the queue holds no cycle.
    private var queue: [(at: Instant, action: (ReplayWorld) -> Void)] = []
    private var queueHead = 0
    private let clientId = ClientId(UUID(uuidString: "00000000-0000-4000-8000-00000000c001")!)
    private let gatewayId = GatewayId(UUID(uuidString: "00000000-0000-4000-8000-00000000d001")!)
    private let scenario: ReplayScenario
    private let clientAddresses: (ipv4: IPv4Address, ipv6: IPv6Address)
    private var pendingRefs: [String: ResourceId] = [:]
    private var nextRef = 0
    private let presharedKey: PresharedKey
    private let iceCredentials: (client: IceCredentials, gateway: IceCredentials)
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)

    init(scenario: ReplayScenario, clientIpv4: IPv4Address, clientIpv6: IPv6Address, unixTimeNanoseconds: Int64, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let start = Self.start
        now = start
        self.scenario = scenario
        clientAddresses = (clientIpv4, clientIpv6)
        client = ClientState(privateKey: Self.key(&random), now: start, unixTimeNanoseconds: unixTimeNanoseconds,
                             internetResourceEnabled: scenario.internetResourceEnabled, random: random.split())
        gateway = GatewayState(privateKey: Self.key(&random), now: start, unixTimeNanoseconds: unixTimeNanoseconds,
                               random: random.split())
        relay = TurnServer(ip: Self.relayIp, username: "\(unixTimeNanoseconds / 1_000_000_000 + 86_400):replay",
                           password: "replay-relay-password")
        presharedKey = PresharedKey(WireGuardKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })!)
        iceCredentials = (.init(ufrag: "rcli", password: "replay-client-ice-password"),
                          .init(ufrag: "rgwy", password: "replay-gateway-ice-password"))
    }

    deinit {
        output.deallocate()
    }

    private static func key(_ random: inout SplitMix64) -> SecretKey {
        SecretKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })!
    }

    /// Sends both sides their `init` (the gateway first, as a portal does when the gateway is up first).
    func start() throws {
        let relays = [Relay.turn(TurnRelay(id: RelayId(UUID(uuidString: "00000000-0000-4000-8000-00000000e001")!),
                                           address: relay.address, username: relay.credentials.username,
                                           password: relay.credentials.password, expiresAt: Int64.max / 2))]
        try toGateway(.initialize(GatewayInit(interface: GatewayInterface(ipv4: Self.gatewayIpv4, ipv6: Self.gatewayIpv6),
                                              relays: relays)))
        let interface = ClientInterface(ipv4: clientAddresses.ipv4, ipv6: clientAddresses.ipv6,
                                        upstreamDo53: scenario.upstreamDns.map(Do53Upstream.init))
        try toClient(.initialize(ClientInit(interface: interface, resources: scenario.clientResources, relays: relays)))
    }

    // MARK: Inputs

    /// A packet the client's OS writes into its TUN device: sent, buffered behind a connection intent,
    /// consumed by the client's DNS server, or dropped (the reason in the client's statistics).
    func fromClientTun(_ packet: IpPacket) {
        do {
            if let datagram = try client.handleTunPacket(packet, into: output, now: now) {
                send(TurnDatagram(source: datagram.source ?? Self.clientSocket, destination: datagram.destination,
                                  payload: Array(output[0..<datagram.count])))
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
                send(TurnDatagram(source: datagram.source ?? Self.gatewaySocket, destination: datagram.destination,
                                  payload: Array(output[0..<datagram.count])))
            }
        } catch .packet {
            onGatewayRefusedPacket(false)
        } catch {
            pipelineError("gateway", error)
        }
        flushGateway()
    }

    /// Packets from the client's TUN device that the client refused as malformed or unsupported (the packet's
    /// fault, so a verdict rather than an error; the gateway's refusals go to ``onGatewayRefusedPacket``).
    private(set) var clientRefusedPackets = 0

    /// A failure of the pipeline (a typed error that is not about the packet itself, or a refused portal
    /// message), with the side that raised it and when.
    private func pipelineError(_ side: String, _ error: any Error) {
        onPipelineError("\(side) at +\(now - Self.start): \(error)")
    }

    /// Runs everything due up to `deadline`: deliveries, portal messages and both sides' timers.
    func advance(to deadline: Instant) {
        var stepsAtThisInstant = 0
        var lastInstant = now
        while true {
            stepsAtThisInstant = now == lastInstant ? stepsAtThisInstant + 1 : 0
            lastInstant = now
            guard stepsAtThisInstant < 100_000 else {
                stuckAt = now
                break
            }
            let nextAction = queueHead < queue.count ? queue[queueHead].at : nil
            let clientTimer = client.pollTimeout(), gatewayTimer = gateway.pollTimeout()
            guard let next = nextAction.earliest(clientTimer).earliest(gatewayTimer), next <= deadline else { break }
            now = max(now, next)
            if let nextAction, nextAction <= now {
                let action = queue[queueHead].action
                queueHead += 1
                if queueHead > 4096, queueHead * 2 > queue.count {
                    queue.removeFirst(queueHead)
                    queueHead = 0
                }
                action(self)
            } else if let clientTimer, clientTimer <= now {
                client.handleTimeout(now: now)
                flushClient()
            } else {
                gateway.handleTimeout(now: now)
                flushGateway()
            }
        }
        now = max(now, deadline)
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

    private func reportGatewayDrop(since before: [GatewayDrop: Int], fromClient: Bool) {
        for (drop, count) in gateway.statistics.drops where count > before[drop, default: 0] {
            for _ in 0..<(count - before[drop, default: 0]) { onGatewayDrop(drop, fromClient) }
        }
    }

    /// How the client reaches the gateway now: `direct`, `relayed` or `none`.
    var pathDescription: String {
        guard let path = client.connections(now: now).first(where: { $0.peer == gatewayId })?.path else { return "none" }
        return path.isRelayed ? "relayed" : "direct"
    }

    // MARK: The network

    /// Runs `action` after the network's latency.
    func later(_ action: @escaping (ReplayWorld) -> Void) {
        queue.append((now + latency, action))
    }

    private func send(_ datagram: TurnDatagram) {
        onWire(datagram)
        later { $0.deliver(datagram) }
    }

    private func deliver(_ datagram: TurnDatagram) {
        if datagram.destination == Self.gatewaySocket {
            toGatewaySocket(datagram)
        } else if datagram.destination == Self.clientSocket {
            toClientSocket(datagram)
        } else if relay.owns(datagram.destination), let answer = relay.handle(datagram, now: now) {
            send(answer)
        }
    }

    private func toClientSocket(_ datagram: TurnDatagram) {
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

    private func toGatewaySocket(_ datagram: TurnDatagram) {
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
            send(TurnDatagram(source: transmit.source ?? Self.clientSocket, destination: transmit.destination, payload: transmit.payload))
        }
        while let message = client.pollPortalMessage() { fromClient(message) }
        while let event = client.pollEvent() { onClientEvent(event) }
        while let packet = client.pollTunPacket() { onClientTun(packet) }
    }

    private func flushGateway() {
        while let transmit = gateway.pollTransmit() {
            send(TurnDatagram(source: transmit.source ?? Self.gatewaySocket, destination: transmit.destination, payload: transmit.payload))
        }
        while let message = gateway.pollPortalMessage() { fromGateway(message) }
        while let event = gateway.pollEvent() { onGatewayEvent(event) }
    }

    // MARK: The portal

    private func toClient(_ message: ClientIngress) throws {
        client.handle(try ClientIngress(event: message.event, payload: message.payload), now: now)
        flushClient()
    }

    private func toGateway(_ message: GatewayIngress) throws {
        gateway.handle(try GatewayIngress(event: message.event, payload: message.payload), now: now)
        flushGateway()
    }

    private func portal(_ action: @escaping (ReplayWorld) throws -> Void) {
        later { world in
            do { try action(world) } catch { world.pipelineError("portal", error) }
        }
    }

    private func fromClient(_ message: ClientEgress) {
        switch message {
        case .createFlow(let flow):
            guard let resource = scenario.gatewayResources[flow.resourceId] else {
                portal { try $0.toClient(.flowCreationFailed(FlowCreationFailed(resourceId: flow.resourceId, reason: .notFound))) }
                return
            }
            nextRef += 1
            let ref = "replay-\(nextRef)"
            pendingRefs[ref] = flow.resourceId
            let authorize = AuthorizeFlow(
                ref: ref, resource: resource,
                client: FlowClient(id: clientId, publicKey: WireGuardKey(bytes: client.publicKey.bytes)!, presharedKey: presharedKey,
                                   ipv4: clientAddresses.ipv4, ipv6: clientAddresses.ipv6),
                clientIceCredentials: iceCredentials.client, gatewayIceCredentials: iceCredentials.gateway)
            portal { try $0.toGateway(.authorizeFlow(authorize)) }
        case .broadcastIceCandidates(let broadcast):
            portal { try $0.toGateway(.iceCandidates(ClientCandidates(peer: $0.clientId, candidates: broadcast.candidates))) }
        case .broadcastInvalidatedIceCandidates(let broadcast):
            portal { world in
                try world.toGateway(.invalidateIceCandidates(ClientCandidates(peer: world.clientId, candidates: broadcast.candidates)))
            }
        }
    }

    private func fromGateway(_ message: GatewayEgress) {
        switch message {
        case .flowAuthorized(let ref):
            guard let resource = pendingRefs.removeValue(forKey: ref) else { return }
            let created = FlowCreated(
                resourceId: resource, gatewayId: gatewayId, gatewayPublicKey: WireGuardKey(bytes: gateway.publicKey.bytes)!,
                gatewayIpv4: Self.gatewayIpv4, gatewayIpv6: Self.gatewayIpv6, siteId: scenario.site.id, presharedKey: presharedKey,
                clientIceCredentials: iceCredentials.client, gatewayIceCredentials: iceCredentials.gateway)
            portal { try $0.toClient(.flowCreated(created)) }
        case .broadcastIceCandidates(let broadcast):
            portal { try $0.toClient(.iceCandidates(GatewayCandidates(peer: $0.gatewayId, candidates: broadcast.candidates))) }
        case .broadcastInvalidatedIceCandidates(let broadcast):
            portal { world in
                try world.toClient(.invalidateIceCandidates(GatewayCandidates(peer: world.gatewayId, candidates: broadcast.candidates)))
            }
        }
    }
}
