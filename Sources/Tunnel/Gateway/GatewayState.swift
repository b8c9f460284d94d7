import Dns
import Ice
import IpPacket
import Noise
import P2pControl
import PortalMessages
import SansIO
import Turn

/// The gateway's tunnel (spec `tunnel-dns.md` §5): the portal's orders, one ``Node`` connection per client,
/// per-client authorisation with filters and expiry, DNS-resource NAT, and the ICMP answers the gateway
/// originates. Sans-IO like the node: the app feeds portal messages, datagrams, TUN packets and time, and
/// drains ``pollPortalMessage()``, ``pollTransmit()`` and ``pollEvent()``.
public final class GatewayState {
    /// The gateway's own tunnel addresses, from `init`.
    public private(set) var interface: GatewayInterface?
    public internal(set) var statistics = GatewayStatistics()

    let node: Node<ClientId>
    var clients: [ClientId: ClientOnGateway] = [:]
    var clientByTunnelIp: [IpAddress: ClientId] = [:]
    var portalOutbox: [GatewayEgress] = []
    var events: [GatewayEvent] = []
    var tcpDns: TcpDnsServer
    var nextTick: Instant?
    var flows = FlowTracker()
    /// Flow logs (`RUST_LOG` containing `flow_logs=trace`): track TCP and UDP flows for ``pollFlowRecord()``.
    public var tracksFlows = false
    let timeAnchor: Instant
    let unixNanosecondsAtAnchor: Int64

    static var tick: Duration { .seconds(1) }

    /// - Parameter keyLog: receives this side's secrets of every WireGuard handshake, for a key log that
    ///   decrypts captures (``Node/keyLog``); `nil`, the default, writes none.
    public init(privateKey: SecretKey, now: Instant, unixTimeNanoseconds: Int64,
                random: any RandomNumberGenerator = SystemRandomNumberGenerator(), keyLog: ((WireGuardSessionSecrets) -> Void)? = nil) {
        var random = random
        tcpDns = TcpDnsServer(random: SplitMix64(seed: random.next()))
        node = Node(role: .gateway, privateKey: privateKey, now: now, unixTimeNanoseconds: unixTimeNanoseconds,
                    random: random)
        node.keyLog = keyLog
        timeAnchor = now
        unixNanosecondsAtAnchor = unixTimeNanoseconds
    }

    /// The WireGuard public key the portal announces to clients.
    public var publicKey: Noise.PublicKey { node.publicKey }

    /// What the node dropped or refused.
    public var nodeStatistics: NodeStatistics { node.statistics }

    /// How many peers have a connection.
    public var connectionCount: Int { node.connectionCount }

    /// Every client connection as it is at `now`.
    public func connections(now: Instant) -> [PeerView<ClientId>] {
        node.peerViews(now: now)
    }

    /// Every relay the node knows and what it allocated there.
    public var relays: [RelayView] { node.relayViews }
    /// The relays reached over TCP or TLS, for the IO layer to keep a stream to (``Node/relayStreams``).
    public var relayStreams: [SocketAddress: RelayTransport] { node.relayStreams }
    public var relayStreamsGeneration: Int { node.relayStreamsGeneration }

    /// The clients with state on this gateway.
    public var clientIds: [ClientId] { Array(clients.keys) }

    /// The resources a client is authorised for.
    public func resources(of client: ClientId) -> [ResourceId] {
        clients[client].map { Array($0.authorizations.keys) } ?? []
    }

    // MARK: Portal

    /// Applies one message from the portal (spec §5.2).
    public func handle(_ message: GatewayIngress, now: Instant) {
        switch message {
        case .initialize(let initMessage):
            initialize(initMessage, now: now)
        case .authorizeFlow(let flow):
            authorize(flow, now: now)
        case .iceCandidates(let candidates):
            for candidate in candidates.candidates { node.addRemoteCandidate(candidates.peer, candidate, now: now) }
        case .invalidateIceCandidates(let candidates):
            for candidate in candidates.candidates { node.removeRemoteCandidate(candidates.peer, candidate, now: now) }
        case .relaysPresence(let presence):
            node.applyRelaysPresence(presence, now: now)
        case .resourceUpdated(let resource):
            updateResource(resource)
        case .rejectAccess(let key):
            removeAccess(client: key.clientId, resources: [key.resourceId], reason: "the portal rejected access", now: now)
        case .accessAuthorizationExpiryUpdated(let expiry):
            clients[expiry.clientId]?.authorizations[expiry.resourceId]?.expiresAt = expiry.expiresAt
        }
    }

    /// The next message for the portal: `flow_authorized` replies and candidates to broadcast.
    public func pollPortalMessage() -> GatewayEgress? {
        drainNodeEvents()
        return portalOutbox.isEmpty ? nil : portalOutbox.removeFirst()
    }

    public func pollEvent() -> GatewayEvent? {
        drainNodeEvents()
        return events.isEmpty ? nil : events.removeFirst()
    }

    /// The next line for the app's log: connections, their paths and ends, relays (``TunnelReport``).
    public func pollReport() -> TunnelReport? {
        node.pollReport()
    }

    public func pollTransmit() -> NodeTransmit? {
        node.pollTransmit()
    }

    // MARK: Time

    /// Node timers, and every second the expiry of authorisations and NAT sessions (spec §5.2).
    public func handleTimeout(now: Instant) {
        node.handleTimeout(now: now)
        tcpDns.handleTimeout(now: now)
        flushTcpDns(now: now)
        guard nextTick.map({ now >= $0 }) ?? true else { return }
        nextTick = now + Self.tick
        let unixSeconds = unixNanoseconds(now) / 1_000_000_000
        if !flows.isEmpty { flows.expire(now: now, unixNanoseconds: unixNanoseconds(now)) }
        for (id, client) in clients {
            let expired = client.authorizations.filter { $0.value.expiresAt.map { $0 <= unixSeconds } ?? false }.map(\.key)
            if !expired.isEmpty { removeAccess(client: id, resources: expired, reason: "authorization expired", now: now) }
            clients[id]?.dnsNat.expire(now: now)
        }
    }

    public func pollTimeout() -> Instant? {
        node.pollTimeout().earliest(nextTick).earliest(tcpDns.pollTimeout())
    }

    /// Graceful shutdown: a Goodbye to every client, every relay allocation deleted; flows in progress end.
    public func shutdown(now: Instant) {
        node.shutDown(now: now)
        flows.finishAll(unixNanoseconds: unixNanoseconds(now))
    }

    /// The next finished flow, while ``tracksFlows`` is on.
    public func pollFlowRecord() -> FlowRecord? {
        flows.pollFinished()
    }

    func unixNanoseconds(_ now: Instant) -> Int64 {
        unixNanosecondsAtAnchor + (now - timeAnchor).totalNanoseconds
    }

    // MARK: Details

    private func initialize(_ message: GatewayInit, now: Instant) {
        node.replaceRelays(with: message.relays, now: now)
        interface = message.interface
        events.append(.interfaceConfigured(ipv4: message.interface.ipv4, ipv6: message.interface.ipv6))
        for (id, client) in clients {
            let kept = message.authorizations.filter { $0.clientId == id }
            let dropped = client.authorizations.keys.filter { resource in !kept.contains { $0.resourceId == resource } }
            for expiry in kept { client.authorizations[expiry.resourceId]?.expiresAt = expiry.expiresAt }
            if !dropped.isEmpty { removeAccess(client: id, resources: Array(dropped), reason: "not in the portal's init", now: now) }
        }
    }

    private func authorize(_ flow: AuthorizeFlow, now: Instant) {
        guard let remoteKey = Noise.PublicKey(bytes: flow.client.publicKey.bytes),
              let presharedKey = SecretKey(bytes: flow.client.presharedKey.key.bytes)
        else {
            events.append(.refused("authorize_flow \(flow.ref): unusable client keys"))
            return
        }
        do {
            try node.upsertConnection(flow.client.id, remoteKey: remoteKey, presharedKey: presharedKey,
                                      local: flow.gatewayIceCredentials, remote: flow.clientIceCredentials, now: now)
        } catch .noTurnServers {
            events.append(.noRelays)
            return
        } catch {
            events.append(.refused("authorize_flow \(flow.ref): \(error)"))
            return
        }
        let client = clients[flow.client.id] ?? ClientOnGateway(id: flow.client.id, ipv4: flow.client.ipv4, ipv6: flow.client.ipv6)
        clientByTunnelIp[.v4(client.ipv4)] = nil
        clientByTunnelIp[.v6(client.ipv6)] = nil
        client.ipv4 = flow.client.ipv4
        client.ipv6 = flow.client.ipv6
        client.flowContext = FlowContext(client: flow.client, subject: flow.subject)
        clients[client.id] = client
        clientByTunnelIp[.v4(client.ipv4)] = client.id
        clientByTunnelIp[.v6(client.ipv6)] = client.id
        // Re-authorising keeps the old expiry; only the filters change (spec §5.2, 2025).
        let expiry = client.authorizations[flow.resource.id].map(\.expiresAt) ?? flow.expiresAt
        client.authorizations[flow.resource.id] = .init(resource: flow.resource, expiresAt: expiry)
        client.recomputeFilters()
        node.report(.info, "Access authorized", ["cid": "\(client.id)", "rid": "\(flow.resource.id)",
                                                 "expires": expiry.map { "\($0)" } ?? "never"])
        portalOutbox.append(.flowAuthorized(ref: flow.ref))
    }

    private func updateResource(_ resource: GatewayResource) {
        for client in clients.values {
            guard let existing = client.authorizations[resource.id] else { continue }
            guard Self.sameType(existing.resource, resource) else {
                events.append(.refused("resource_updated \(resource.id): the type of a resource cannot change"))
                continue
            }
            client.authorizations[resource.id]?.resource = resource
            client.recomputeFilters()
            node.report(.info, "Resource updated", ["cid": "\(client.id)", "rid": "\(resource.id)"])
        }
    }

    /// Removes resources; a client left with none is forgotten and sent a Goodbye (spec §5.2, §5.11).
    func removeAccess(client id: ClientId, resources: [ResourceId], reason: String, now: Instant) {
        guard let client = clients[id] else { return }
        for resource in resources where client.authorizations.removeValue(forKey: resource) != nil {
            node.report(.info, "Access removed", ["cid": "\(id)", "rid": "\(resource)", "reason": reason])
        }
        client.recomputeFilters()
        guard client.authorizations.isEmpty else { return }
        forgetClient(id)
        node.closeSayingGoodbye(id, now: now)
    }

    func forgetClient(_ id: ClientId) {
        guard let client = clients.removeValue(forKey: id) else { return }
        clientByTunnelIp[.v4(client.ipv4)] = nil
        clientByTunnelIp[.v6(client.ipv6)] = nil
    }

    private func drainNodeEvents() {
        var round = CandidateRound<ClientId>()
        while let event = node.pollEvent() {
            switch event {
            case let .newIceCandidate(peer, candidate):
                round.add(candidate, for: peer, invalidated: false)
            case let .invalidateIceCandidate(peer, candidate):
                round.add(candidate, for: peer, invalidated: true)
            case .connectionEstablished, .connectionFailed, .connectionClosed:
                // The client's state outlives its connections (spec §5.11).
                break
            }
        }
        for message in round.messages {
            let candidates = CandidatesForClients(peers: [message.peer], candidates: message.candidates)
            portalOutbox.append(message.invalidated ? .broadcastInvalidatedIceCandidates(candidates) : .broadcastIceCandidates(candidates))
        }
    }

    private static func sameType(_ a: GatewayResource, _ b: GatewayResource) -> Bool {
        switch (a, b) {
        case (.cidr, .cidr), (.dns, .dns), (.internet, .internet): true
        default: false
        }
    }
}
