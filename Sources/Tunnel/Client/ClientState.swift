import Dns
import DnsNat
import IpPacket
import Noise
import P2pControl
import PortalMessages
import SansIO

/// The client's tunnel (spec `tunnel-dns.md` §4): resources and routes, route selection, connection intents
/// with their buffers, one ``Node`` connection per gateway, and the reactions to every portal message.
/// Sans-IO: the app feeds portal messages, TUN packets, datagrams and time, and drains
/// ``pollPortalMessage()``, ``pollTransmit()`` and ``pollEvent()``.
///
/// DNS: queries to the sentinel addresses are answered by the stub resolver (proxy IPs for DNS resources),
/// recursed through the tunnel (SRV/TXT to the resource's gateway, or to a portal upstream inside a resource),
/// or handed to the app to recurse; packets to proxy IPs go through the client side of DNS-resource NAT.
public final class ClientState {

    /// A resource's pending connection intent: its buffered packets and when the last intent went out.
    struct PendingFlow {
        var lastIntent: Instant
        var packets = UniquePacketRing(capacity: 128)
    }

    public let node: Node<GatewayId>
    public private(set) var tunConfig: TunConfig?
    public private(set) var resources: [ResourceId: ClientResource] = [:]
    public private(set) var internetResourceEnabled: Bool
    public internal(set) var statistics = ClientStatistics()

    var interface: ClientInterface?
    /// Longest prefix first.
    var activeCidrs: [(network: IpNetwork, resource: ResourceId)] = []
    var authorized: [ResourceId: GatewayId] = [:]
    var gatewaysBySite: [SiteId: Set<GatewayId>] = [:]
    var peers: [GatewayId: GatewayPeer] = [:]
    var peerByTunnelIp: [IpAddress: GatewayId] = [:]
    var pendingFlows: [ResourceId: PendingFlow] = [:]
    var portalOutbox: [ClientEgress] = []
    var events: [ClientEvent] = []
    var lastResourcesEmitted: [ResourceView]?
    var siteStatus: [SiteId: ResourceStatus] = [:]
    var dns: ClientDns
    var dnsNat = ClientDnsResourceNat<GatewayId>()
    var inTunnelDns: InTunnelDnsClient
    var tcpDns: TcpDnsServer
    var tcpDnsClient: TcpDnsClient<ClientDns.PendingQuery>
    /// Queries that came in over TCP and wait for a recursion, with the connection to answer on.
    var tcpQueries: [(pending: ClientDns.PendingQuery, connection: TcpConnectionId)] = []
    var systemResolvers: [IpAddress] = []
    var tunOutbox: [IpPacket] = []
    let scratch: UnsafeMutableRawBufferPointer

    static var intentInterval: Duration { .seconds(2) }

    /// - Parameter proxyIpRecords: the records of the previous session (``ClientEvent/proxyIpRecordsChanged(_:)``), so
    ///   domains keep their proxy IPs and gateways that kept this client's NAT state stay right (seed 004 #10104).
    public init(privateKey: SecretKey, now: Instant, unixTimeNanoseconds: Int64, internetResourceEnabled: Bool = false,
                proxyIpRecords: [ProxyIpRecord] = [], random: any RandomNumberGenerator = SystemRandomNumberGenerator()) {
        var random = random
        inTunnelDns = InTunnelDnsClient(random: SplitMix64(seed: random.next()))
        tcpDns = TcpDnsServer(random: SplitMix64(seed: random.next()))
        tcpDnsClient = TcpDnsClient(random: SplitMix64(seed: random.next()))
        node = Node(role: .client, privateKey: privateKey, now: now, unixTimeNanoseconds: unixTimeNanoseconds, random: random)
        self.internetResourceEnabled = internetResourceEnabled
        dns = ClientDns(stub: StubResolver(restoring: proxyIpRecords.map { ($0.domain, $0.ips) }))
        scratch = .allocate(byteCount: 2048, alignment: 16)
    }

    deinit {
        scratch.deallocate()
    }

    /// Every domain's proxy IPs, for the next session.
    public var proxyIpRecords: [ProxyIpRecord] {
        dns.stub.allocator.exported().map { ProxyIpRecord(domain: $0.domain, ips: $0.ips) }
    }

    /// The gateway a resource is authorised on, if any.
    public func gateway(for resource: ResourceId) -> GatewayId? {
        authorized[resource]
    }

    // MARK: Portal

    public func handle(_ message: ClientIngress, now: Instant) {
        switch message {
        case .initialize(let initMessage):
            node.updateRelays(removing: staleRelays(keeping: initMessage.relays), adding: GatewayState.relayDescriptions(initMessage.relays),
                              now: now)
            interface = initMessage.interface
            setAllResources(initMessage.resources, now: now)
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
            node.updateRelays(removing: presence.disconnectedIds.map(\.description),
                              adding: GatewayState.relayDescriptions(presence.connected), now: now)
        case .iceCandidates(let candidates):
            for candidate in candidates.candidates { node.addRemoteCandidate(candidates.peer, candidate, now: now) }
        case .invalidateIceCandidates(let candidates):
            for candidate in candidates.candidates { node.removeRemoteCandidate(candidates.peer, candidate, now: now) }
        case .flowCreated(let flow):
            flowCreated(flow, now: now)
        case .flowCreationFailed(let failure):
            guard failure.reason == .offline else {
                events.append(.refused("create_flow for \(failure.resourceId) failed: \(failure.reason)"))
                return
            }
            pendingFlows[failure.resourceId] = nil
            for site in resources[failure.resourceId]?.sites ?? [] { siteStatus[site.id] = .offline }
            if let gateway = authorized[failure.resourceId] { cleanUp(gateway) }
            emitResourcesIfChanged()
        }
    }

    /// Turns the Internet resource on or off (idempotent); off closes a gateway nothing else uses.
    public func setInternetResource(enabled: Bool, now: Instant) {
        guard enabled != internetResourceEnabled else { return }
        internetResourceEnabled = enabled
        if !enabled, let internet = resources.values.first(where: { if case .internet = $0 { true } else { false } }) {
            disable(internet.id, now: now)
        }
        recomputeTunConfig()
    }

    public func pollPortalMessage() -> ClientEgress? {
        drainNodeEvents()
        return portalOutbox.isEmpty ? nil : portalOutbox.removeFirst()
    }

    public func pollEvent() -> ClientEvent? {
        drainNodeEvents()
        return events.isEmpty ? nil : events.removeFirst()
    }

    public func pollTransmit() -> NodeTransmit? {
        node.pollTransmit()
    }

    /// The next packet for the TUN device that did not come from a gateway: DNS answers over UDP and the
    /// TCP DNS server's segments.
    public func pollTunPacket() -> IpPacket? {
        tunOutbox.isEmpty ? tcpDns.pollPacket() : tunOutbox.removeFirst()
    }

    /// The OS's resolvers, the upstreams behind the sentinels when the portal configures none (spec §4.6.1).
    public func setSystemResolvers(_ resolvers: [IpAddress]) {
        systemResolvers = resolvers
        recomputeTunConfig()
    }

    /// The answer to a query the app recursed (``ClientEvent/recurseDns(_:upstream:)``); `nil` for a failure,
    /// answered with SERVFAIL.
    public func dnsAnswered(_ pending: ClientDns.PendingQuery, response: DnsMessage?, now: Instant) {
        try? answer(pending, with: response, now: now)
    }

    public func handleTimeout(now: Instant) {
        node.handleTimeout(now: now)
        expireInTunnelDnsQueries(now: now)
        tcpDns.handleTimeout(now: now)
        tcpDnsClient.handleTimeout(now: now)
        drainTcpDnsClient(now: now)
        drainNodeEvents()
    }

    public func pollTimeout() -> Instant? {
        node.pollTimeout().earliest(inTunnelDns.nextDeadline).earliest(tcpDns.pollTimeout()).earliest(tcpDnsClient.pollTimeout())
    }

    /// Network change, roaming or SIGHUP (spec §4.9): every connection and allocation is dropped, the key
    /// pair replaced, peers, authorisations and DNS-resource NAT cleared. Resources, the stub resolver's
    /// records and the sites survive. The app rebinds its sockets and rejoins the portal with the new key; the
    /// portal's `init` brings the relays back.
    public func reset(now: Instant) {
        node.reset(now: now)
        for gateway in Array(peers.keys) { cleanUp(gateway) }
        authorized.removeAll()
        pendingFlows.removeAll()
        dnsNat.reset()
        for pending in inTunnelDns.reset() { try? answer(pending, with: nil, now: now) }
        tcpDnsClient.reset()
        drainTcpDnsClient(now: now)
        drainNodeEvents()
    }

    /// Sign-out: a Goodbye to every gateway.
    public func shutdown(now: Instant) {
        withGoodbye { node.closeAll(goodbye: $0, now: now) }
    }

    // MARK: Resources

    private func setAllResources(_ list: [ClientResource], now: Instant) {
        let listed = Set(list.map(\.id))
        for id in resources.keys where !listed.contains(id) { remove(id, now: now) }
        for resource in list { add(resource, now: now) }
        recomputeAfterResourceChange()
    }

    /// Adds or updates a resource; a change of address, IP stack or sites removes the old one first (spec §4.2).
    private func add(_ resource: ClientResource, now: Instant) {
        if let existing = resources[resource.id], !Self.sameAddressability(existing, resource) {
            remove(resource.id, now: now)
        }
        resources[resource.id] = resource
        if case .dns(let dnsResource) = resource {
            dns.stub.upsert(DnsResource(id: resource.id, pattern: DomainPattern(dnsResource.address), stack: dnsResource.ipStack))
        }
        dns.cache.flush()
    }

    private func remove(_ id: ResourceId, now: Instant) {
        guard resources.removeValue(forKey: id) != nil else { return }
        dns.stub.remove(id)
        dnsNat.removeResource(id)
        dns.cache.flush()
        disable(id, now: now)
    }

    /// Drops a resource's pending flow and authorisation; a gateway left without resources gets a Goodbye.
    private func disable(_ id: ResourceId, now: Instant) {
        pendingFlows[id] = nil
        guard let gatewayId = authorized.removeValue(forKey: id), let peer = peers[gatewayId] else { return }
        guard peer.revoke(id) else { return }
        forgetPeer(gatewayId)
        withGoodbye { node.closeConnection(gatewayId, goodbye: $0, now: now) }
    }

    private func recomputeAfterResourceChange() {
        recomputeActiveCidrs()
        recomputeTunConfig()
        emitResourcesIfChanged()
    }

    /// A resource is online if any site is, offline if all are, else unknown (spec §4.7).
    public func status(of resource: ResourceId) -> ResourceStatus {
        let statuses = (resources[resource]?.sites ?? []).map { siteStatus[$0.id] ?? .unknown }
        if statuses.contains(.online) { return .online }
        if !statuses.isEmpty, statuses.allSatisfy({ $0 == .offline }) { return .offline }
        return .unknown
    }

    func setStatus(_ status: ResourceStatus, ofSitesOf gateway: GatewayId) {
        for (site, gateways) in gatewaysBySite where gateways.contains(gateway) { siteStatus[site] = status }
        emitResourcesIfChanged()
    }

    func emitResourcesIfChanged() {
        let list = resources.values.sorted { $0.id < $1.id }.map { ResourceView(resource: $0, status: status(of: $0.id)) }
        guard list != lastResourcesEmitted else { return }
        lastResourcesEmitted = list
        events.append(.resourcesChanged(list))
    }

    /// One active resource per identical network: visiting ascending ids, a later one replaces the entry
    /// unless the current one is connected (spec §4.2 "CIDR overlap").
    private func recomputeActiveCidrs() {
        var byNetwork: [IpNetwork: ResourceId] = [:]
        for resource in resources.values.sorted(by: { $0.id < $1.id }) {
            guard case .cidr(let cidr) = resource else { continue }
            if let current = byNetwork[cidr.address], isConnected(current) { continue }
            byNetwork[cidr.address] = cidr.id
        }
        activeCidrs = byNetwork.map { ($0.key, $0.value) }.sorted { $0.network.prefixLength > $1.network.prefixLength }
    }

    func isConnected(_ resource: ResourceId) -> Bool {
        authorized[resource].map { peers[$0] != nil } ?? false
    }

    var internetResourceId: ResourceId? {
        guard internetResourceEnabled else { return nil }
        return resources.values.first { if case .internet = $0 { true } else { false } }?.id
    }

    private func recomputeTunConfig() {
        guard let interface else { return }
        var routes = activeCidrs.map(\.network) + AddressPlan.fixedRoutes
        if internetResourceId != nil { routes += [AddressPlan.everythingV4, AddressPlan.everythingV6] }
        routes = Array(Set(routes)).sorted {
            ($0.address.version.rawValue, 255 - $0.prefixLength, $0.address) < ($1.address.version.rawValue, 255 - $1.prefixLength, $1.address)
        }
        _ = dns.sentinels.update(portalDo53: interface.effectiveDo53, portalDoh: interface.upstreamDoh.map(\.url),
                                 system: systemResolvers)
        let config = TunConfig(ipv4: interface.ipv4, ipv6: interface.ipv6, routes: routes,
                               dnsServers: dns.sentinels.mapping.map(\.sentinel), searchDomain: interface.searchDomain)
        guard config != tunConfig else { return }
        tunConfig = config
        events.append(.tunInterfaceUpdated(config))
    }

    private static func sameAddressability(_ a: ClientResource, _ b: ClientResource) -> Bool {
        switch (a, b) {
        case let (.cidr(x), .cidr(y)): x.address == y.address && Set(x.sites.map(\.id)) == Set(y.sites.map(\.id))
        case let (.dns(x), .dns(y)):
            x.address == y.address && x.ipStack == y.ipStack && Set(x.sites.map(\.id)) == Set(y.sites.map(\.id))
        case let (.internet(x), .internet(y)): Set(x.sites.map(\.id)) == Set(y.sites.map(\.id))
        default: false
        }
    }

    private func staleRelays(keeping relays: [Relay]) -> [String] {
        let listed = Set(relays.map(\.id.description))
        return node.allocations.entries.map(\.id).filter { !listed.contains($0) }
    }

    // MARK: Gateways

    private func flowCreated(_ flow: FlowCreated, now: Instant) {
        guard let resource = resources[flow.resourceId] else {
            events.append(.refused("flow_created for unknown resource \(flow.resourceId)"))
            return
        }
        guard let pending = pendingFlows.removeValue(forKey: flow.resourceId) else { return }
        guard let remoteKey = Noise.PublicKey(bytes: flow.gatewayPublicKey.bytes),
              let presharedKey = SecretKey(bytes: flow.presharedKey.key.bytes)
        else {
            events.append(.refused("flow_created for \(flow.resourceId): unusable gateway keys"))
            return
        }
        do {
            try node.upsertConnection(flow.gatewayId, remoteKey: remoteKey, presharedKey: presharedKey,
                                      local: flow.clientIceCredentials, remote: flow.gatewayIceCredentials, now: now)
        } catch .noTurnServers {
            events.append(.noRelays)
            return
        } catch {
            events.append(.refused("flow_created for \(flow.resourceId): \(error)"))
            return
        }
        authorized[flow.resourceId] = flow.gatewayId
        gatewaysBySite[flow.siteId, default: []].insert(flow.gatewayId)
        let peer = peers[flow.gatewayId] ?? GatewayPeer(id: flow.gatewayId, ipv4: flow.gatewayIpv4, ipv6: flow.gatewayIpv6)
        peers[flow.gatewayId] = peer
        peerByTunnelIp[.v4(peer.ipv4)] = flow.gatewayId
        peerByTunnelIp[.v6(peer.ipv6)] = flow.gatewayId
        switch resource {
        case .cidr(let cidr): peer.allow([cidr.address], for: cidr.id)
        case .internet(let internet): peer.allow([AddressPlan.everythingV4, AddressPlan.everythingV6], for: internet.id)
        case .dns: break  // the proxy IPs are allowed when DNS-resource NAT is requested
        }
        var buffered = pending.packets
        for packet in buffered.drain() { resend(packet, now: now) }
    }

    /// After a failed connection or a Goodbye: forget the gateway and its authorisations, so the next packet
    /// asks the portal again.
    func cleanUp(_ gateway: GatewayId) {
        setStatus(.unknown, ofSitesOf: gateway)
        for (resource, authorizedGateway) in authorized where authorizedGateway == gateway { authorized[resource] = nil }
        dnsNat.removeGateway(gateway)
        forgetPeer(gateway)
        recomputeActiveCidrs()
    }

    private func forgetPeer(_ gateway: GatewayId) {
        guard let peer = peers.removeValue(forKey: gateway) else { return }
        peerByTunnelIp[.v4(peer.ipv4)] = nil
        peerByTunnelIp[.v6(peer.ipv6)] = nil
    }

    private func drainNodeEvents() {
        while let event = node.pollEvent() {
            switch event {
            case let .newIceCandidate(peer, candidate):
                portalOutbox.append(.broadcastIceCandidates(CandidatesForGateways(peers: [peer], candidates: [candidate])))
            case let .invalidateIceCandidate(peer, candidate):
                portalOutbox.append(.broadcastInvalidatedIceCandidates(CandidatesForGateways(peers: [peer], candidates: [candidate])))
            case .connectionFailed(let gateway, _):
                cleanUp(gateway)
            case .connectionEstablished(let gateway):
                setStatus(.online, ofSitesOf: gateway)
            case .connectionClosed(let gateway):
                setStatus(.unknown, ofSitesOf: gateway)
            }
        }
    }

    func withGoodbye(_ body: (UnsafeRawBufferPointer) -> Void) {
        guard let goodbye = try? P2pControlEvent.goodbye.packet() else { return }
        goodbye.withUnsafeBytes { body($0) }
    }
}
