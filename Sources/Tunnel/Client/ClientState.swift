import Dns
import DnsNat
import IpPacket
import Noise
import PortalMessages
import SansIO
import Turn

/// The client's tunnel (spec `tunnel-dns.md` §4): resources and routes, route selection, flow requests with
/// the packets that wait for them, one ``Node`` connection per gateway, and the reactions to every portal
/// message. Sans-IO: the app feeds portal messages, TUN packets, datagrams and time, and drains
/// ``pollPortalMessage()``, ``pollTransmit()``, ``pollTunPacket()`` and ``pollEvent()``.
///
/// DNS: queries to the sentinel addresses are answered by the stub resolver (proxy IPs for DNS resources),
/// recursed through the tunnel (SRV/TXT to the resource's gateway, or to a portal upstream inside a resource),
/// or handed to the app to recurse; packets to proxy IPs go through the client side of DNS-resource NAT.
public final class ClientState {
    public private(set) var tunConfig: TunConfig?
    public internal(set) var statistics = ClientStatistics()

    let node: Node<GatewayId>
    var resources: ClientResources
    var gateways = GatewayPeers()
    var pending = PendingPackets()
    var dns: ClientDnsState
    var dnsNat = ClientDnsResourceNat<GatewayId>()
    var interface: ClientInterface?
    var portalOutbox: [ClientEgress] = []
    var events: [ClientEvent] = []
    var tunOutbox: [IpPacket] = []
    /// The resources the log last named (``emitResourcesIfChanged()``).
    var reportedResources: Set<ResourceId> = []

    /// - Parameter proxyIpRecords: the records of the previous session (``ClientEvent/proxyIpRecordsChanged(_:)``), so
    ///   domains keep their proxy IPs and gateways that kept this client's NAT state stay right (seed 004 #10104).
    /// - Parameter keyLog: receives this side's secrets of every WireGuard handshake, for a key log that
    ///   decrypts captures (``Node/keyLog``); `nil`, the default, writes none.
    public init(privateKey: SecretKey, now: Instant, unixTimeNanoseconds: Int64, internetResourceEnabled: Bool = false,
                proxyIpRecords: [ProxyIpRecord] = [], random: any RandomNumberGenerator = SystemRandomNumberGenerator(),
                keyLog: ((WireGuardSessionSecrets) -> Void)? = nil) {
        var random = random
        dns = ClientDnsState(proxyIpRecords: proxyIpRecords, random: &random)
        node = Node(role: .client, privateKey: privateKey, now: now, unixTimeNanoseconds: unixTimeNanoseconds, random: random)
        node.keyLog = keyLog
        resources = ClientResources(internetResourceEnabled: internetResourceEnabled)
    }

    /// The WireGuard public key of this session; a new one after every ``reset(now:)``.
    public var publicKey: Noise.PublicKey { node.publicKey }

    /// What the node dropped or refused.
    public var nodeStatistics: NodeStatistics { node.statistics }

    /// How many peers have a connection.
    public var connectionCount: Int { node.connectionCount }

    /// Every gateway connection as it is at `now`.
    public func connections(now: Instant) -> [PeerView<GatewayId>] {
        node.peerViews(now: now)
    }

    /// Every relay the node knows and what it allocated there.
    public var relays: [RelayView] { node.relayViews }
    /// The relays reached over TCP or TLS, for the IO layer to keep a stream to (``Node/relayStreams``).
    public var relayStreams: [SocketAddress: RelayTransport] { node.relayStreams }
    public var relayStreamsGeneration: Int { node.relayStreamsGeneration }

    public var resourceList: [ResourceId: ClientResource] { resources.byId }
    public var internetResourceEnabled: Bool { resources.internetResourceEnabled }

    /// Every domain's proxy IPs, for the next session.
    public var proxyIpRecords: [ProxyIpRecord] { dns.proxyIpRecords }

    /// The gateway a resource is authorised on, if any.
    public func gateway(for resource: ResourceId) -> GatewayId? {
        gateways.authorized[resource]
    }

    /// The resources authorised on a gateway, sorted.
    public func resources(on gateway: GatewayId) -> [ResourceId] {
        gateways.authorized.filter { $0.value == gateway }.map(\.key).sorted()
    }

    /// A resource is online if any site is, offline if all are, else unknown (spec §4.7).
    public func status(of resource: ResourceId) -> ResourceStatus {
        resources.status(of: resource)
    }

    // MARK: Portal

    public func handle(_ message: ClientIngress, now: Instant) {
        defer { drainNodeEvents(now: now) }
        switch message {
        case .initialize(let initMessage):
            node.replaceRelays(with: initMessage.relays, now: now)
            interface = initMessage.interface
            setAllResources(initMessage.resources, now: now)
            for resource in initMessage.unsupportedResources {
                events.append(.ignored(UnsupportedPush(event: "init", resourceType: resource.type, resourceId: resource.id)))
            }
        case .configChanged(let interface):
            self.interface = interface
            recomputeTunConfig()
        case .resourceCreatedOrUpdated(let resource):
            add(resource, now: now)
            recomputeAfterResourceChange()
        case .resourceDeleted(let id):
            remove(id, now: now)
            recomputeAfterResourceChange()
        case .relaysPresence(let presence):
            node.applyRelaysPresence(presence, now: now)
        case .iceCandidates(let candidates):
            for candidate in candidates.candidates { node.addRemoteCandidate(candidates.peer, candidate, now: now) }
        case .invalidateIceCandidates(let candidates):
            for candidate in candidates.candidates { node.removeRemoteCandidate(candidates.peer, candidate, now: now) }
        case .flowCreated(let flow):
            flowCreated(flow, now: now)
        case .flowCreationFailed(let failure):
            flowCreationFailed(failure)
        case .unsupported(let push):
            events.append(.ignored(push))
        }
    }

    /// Turns the Internet resource on or off (idempotent); off closes a gateway nothing else uses.
    public func setInternetResource(enabled: Bool, now: Instant) {
        guard resources.setInternetResource(enabled: enabled) else { return }
        if !enabled, let internet = resources.internetResource { disable(internet, now: now) }
        recomputeTunConfig()
        drainNodeEvents(now: now)
    }

    public func pollPortalMessage() -> ClientEgress? {
        portalOutbox.isEmpty ? nil : portalOutbox.removeFirst()
    }

    public func pollEvent() -> ClientEvent? {
        events.isEmpty ? nil : events.removeFirst()
    }

    /// The next line for the app's log: connections, their paths and ends, relays (``TunnelReport``).
    public func pollReport() -> TunnelReport? {
        node.pollReport()
    }

    public func pollTransmit() -> NodeTransmit? {
        node.pollTransmit()
    }

    /// The next packet for the TUN device that did not come from a gateway: DNS answers over UDP and the
    /// TCP DNS server's segments.
    public func pollTunPacket() -> IpPacket? {
        tunOutbox.isEmpty ? dns.tcpServer.pollPacket() : tunOutbox.removeFirst()
    }

    /// The OS's resolvers, the upstreams behind the sentinels when the portal configures none (spec §4.6.1).
    public func setSystemResolvers(_ resolvers: [IpAddress]) {
        dns.systemResolvers = resolvers
        recomputeTunConfig()
    }

    /// The answer to a query the app recursed (``ClientEvent/recurseDns(_:upstream:)``); `nil` for a failure,
    /// answered with SERVFAIL.
    public func dnsAnswered(_ pending: ClientDns.PendingQuery, response: DnsMessage?, now: Instant) {
        try? answer(pending, with: response, now: now)
    }

    public func handleTimeout(now: Instant) {
        node.handleTimeout(now: now)
        for expired in dns.handleTimeout(now: now) { try? answer(expired, with: nil, now: now) }
        drainTcpDnsClient(now: now)
        drainNodeEvents(now: now)
    }

    public func pollTimeout() -> Instant? {
        node.pollTimeout().earliest(dns.pollTimeout())
    }

    /// Network change, roaming or SIGHUP (spec §4.9): every connection and allocation is dropped, the key
    /// pair replaced, peers, authorisations and DNS-resource NAT cleared. Resources, the stub resolver's
    /// records and the sites survive. The app rebinds its sockets and rejoins the portal with the new key; the
    /// portal's `init` brings the relays back.
    public func reset(now: Instant) {
        node.reset(now: now)
        for gateway in gateways.ids { cleanUp(gateway) }
        gateways.forgetAuthorizations()
        pending.discardAll()
        dnsNat.reset()
        for failed in dns.resetTunnelClients() { try? answer(failed, with: nil, now: now) }
        drainTcpDnsClient(now: now)
        drainNodeEvents(now: now)
    }

    /// Sign-out: a Goodbye to every gateway, and every relay allocation deleted.
    public func shutdown(now: Instant) {
        node.shutDown(now: now)
        drainNodeEvents(now: now)
    }

    // MARK: Resources

    private func setAllResources(_ list: [ClientResource], now: Instant) {
        let listed = Set(list.map(\.id))
        for id in Array(resources.ids) where !listed.contains(id) { remove(id, now: now) }
        for resource in list { add(resource, now: now) }
        recomputeAfterResourceChange()
    }

    /// Adds or updates a resource; a change of address, IP stack or sites removes the old one first (spec §4.2).
    private func add(_ resource: ClientResource, now: Instant) {
        if resources.changesAddressability(resource) { remove(resource.id, now: now) }
        resources.upsert(resource)
        if case .dns(let dnsResource) = resource {
            dns.resolver.stub.upsert(DnsResource(id: resource.id, pattern: DomainPattern(dnsResource.address), stack: dnsResource.ipStack))
        }
        dns.resolver.cache.flush()
    }

    private func remove(_ id: ResourceId, now: Instant) {
        guard resources.remove(id) != nil else { return }
        dns.resolver.stub.remove(id)
        dnsNat.removeResource(id)
        dns.resolver.cache.flush()
        disable(id, now: now)
    }

    /// Drops a resource's waiting packets and authorisation; a gateway left without resources gets a Goodbye.
    private func disable(_ id: ResourceId, now: Instant) {
        pending.discard(.flow(id))
        guard let emptied = gateways.revoke(id) else { return }
        pending.discard(.connection(emptied))
        node.closeSayingGoodbye(emptied, now: now)
    }

    private func recomputeAfterResourceChange() {
        recomputeActiveCidrs()
        recomputeTunConfig()
        emitResourcesIfChanged()
    }

    private func recomputeActiveCidrs() {
        resources.recomputeActiveCidrs { gateways.gateway(for: $0) != nil }
    }

    private func recomputeTunConfig() {
        guard let interface else { return }
        _ = dns.resolver.sentinels.update(portalDo53: interface.effectiveDo53, portalDoh: interface.upstreamDoh.map(\.url),
                                          system: dns.systemResolvers)
        let config = TunConfig(ipv4: interface.ipv4, ipv6: interface.ipv6, routes: resources.routes,
                               dnsServers: dns.resolver.sentinels.mapping.map(\.sentinel), searchDomain: interface.searchDomain)
        guard config != tunConfig else { return }
        tunConfig = config
        // Only the latest configuration is applied (seed #10223): one not yet polled is replaced, not queued behind.
        events.removeAll { if case .tunInterfaceUpdated = $0 { true } else { false } }
        events.append(.tunInterfaceUpdated(config))
    }

    func emitResourcesIfChanged() {
        guard let views = resources.changedViews() else { return }
        reportResourceList(views.map(\.resource.id))
        events.removeAll { if case .resourcesChanged = $0 { true } else { false } }
        events.append(.resourcesChanged(views))
    }

    private func setStatus(_ status: ResourceStatus, ofSitesOf gateway: GatewayId) {
        resources.setStatus(status, ofSites: gateways.sites(of: gateway))
        emitResourcesIfChanged()
    }

    // MARK: Gateways

    private func flowCreated(_ flow: FlowCreated, now: Instant) {
        guard let resource = resources[flow.resourceId] else {
            events.append(.refused("flow_created for unknown resource \(flow.resourceId)"))
            return
        }
        guard pending.awaitsFlow(flow.resourceId) else { return }
        guard let remoteKey = Noise.PublicKey(bytes: flow.gatewayPublicKey.bytes),
              let presharedKey = SecretKey(bytes: flow.presharedKey.key.bytes)
        else {
            pending.discard(.flow(flow.resourceId))
            events.append(.refused("flow_created for \(flow.resourceId): unusable gateway keys"))
            return
        }
        do {
            try node.upsertConnection(flow.gatewayId, remoteKey: remoteKey, presharedKey: presharedKey,
                                      local: flow.clientIceCredentials, remote: flow.gatewayIceCredentials, now: now)
        } catch .noTurnServers {
            pending.discard(.flow(flow.resourceId))
            events.append(.noRelays)
            return
        } catch {
            pending.discard(.flow(flow.resourceId))
            events.append(.refused("flow_created for \(flow.resourceId): \(error)"))
            return
        }
        gateways.authorize(flow.resourceId, on: flow.gatewayId, site: flow.siteId, ipv4: flow.gatewayIpv4, ipv6: flow.gatewayIpv6)
        switch resource {
        case .cidr(let cidr): gateways.allow([cidr.address], for: cidr.id, on: flow.gatewayId)
        case .internet(let internet): gateways.allow([AddressPlan.everythingV4, AddressPlan.everythingV6], for: internet.id, on: flow.gatewayId)
        case .dns: break  // the proxy IPs are allowed when DNS-resource NAT is requested
        }
        node.report(.info, "Resource access authorized", ["gid": "\(flow.gatewayId)", "rid": "\(flow.resourceId)"])
        for packet in pending.release(.flow(flow.resourceId)) { resend(packet, now: now) }
    }

    /// One line when the set of resources changes (not their statuses): how many, which came and went.
    private func reportResourceList(_ ids: [ResourceId]) {
        let current = Set(ids)
        guard current != reportedResources else { return }
        let added = current.subtracting(reportedResources).map(\.description).sorted()
        let removed = reportedResources.subtracting(current).map(\.description).sorted()
        reportedResources = current
        node.report(.info, "Resource list changed", ["resources": "\(current.count)", "added": Self.list(added), "removed": Self.list(removed)])
    }

    /// Up to 10 ids and how many more, for a log line of bounded length.
    private static func list(_ ids: [String]) -> String {
        ids.count <= 10 ? ids.joined(separator: ",") : ids.prefix(10).joined(separator: ",") + " and \(ids.count - 10) more"
    }

    private func flowCreationFailed(_ failure: FlowCreationFailed) {
        node.report(.info, "Failed to create flow", ["rid": "\(failure.resourceId)", "reason": "\(failure.reason)"])
        guard failure.reason == .offline else {
            events.append(.refused("create_flow for \(failure.resourceId) failed: \(failure.reason)"))
            return
        }
        pending.discard(.flow(failure.resourceId))
        resources.setStatus(.offline, ofSites: (resources[failure.resourceId]?.sites ?? []).map(\.id))
        if let gateway = gateways.authorized[failure.resourceId] { cleanUp(gateway) }
        emitResourcesIfChanged()
    }

    /// After a failed connection or a Goodbye: forget the gateway, its authorisations and the packets waiting
    /// for it, so the next packet asks the portal again.
    func cleanUp(_ gateway: GatewayId) {
        setStatus(.unknown, ofSitesOf: gateway)
        gateways.forget(gateway)
        pending.discard(.connection(gateway))
        dnsNat.removeGateway(gateway)
        recomputeActiveCidrs()
    }

    /// Turns the node's events into portal messages, statuses and released packets; after every input.
    func drainNodeEvents(now: Instant) {
        var round = CandidateRound<GatewayId>()
        while let event = node.pollEvent() {
            switch event {
            case let .newIceCandidate(peer, candidate):
                round.add(candidate, for: peer, invalidated: false)
            case let .invalidateIceCandidate(peer, candidate):
                round.add(candidate, for: peer, invalidated: true)
            case .connectionFailed(let gateway, _):
                cleanUp(gateway)
            case .connectionEstablished(let gateway):
                setStatus(.online, ofSitesOf: gateway)
                for packet in pending.release(.connection(gateway)) { sendToGateway(packet, gateway: gateway, now: now) }
            case .connectionClosed(let gateway):
                setStatus(.unknown, ofSitesOf: gateway)
            }
        }
        for message in round.messages {
            let candidates = CandidatesForGateways(peers: [message.peer], candidates: message.candidates)
            portalOutbox.append(message.invalidated ? .broadcastInvalidatedIceCandidates(candidates) : .broadcastIceCandidates(candidates))
        }
    }
}
