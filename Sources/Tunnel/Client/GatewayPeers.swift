import PortalMessages
import SansIO

/// The gateways the client has a flow with (spec `tunnel-dns.md` §4.1, §4.5): each one's tunnel addresses and
/// the sources it may send from per resource, which resource is authorised on which gateway, and each
/// gateway's site. Firezone's `PeerStore<GatewayId, GatewayOnClient>`.
struct GatewayPeers {
    struct Peer: Equatable {
        var ipv4: IPv4Address
        var ipv6: IPv6Address
        var allowedSources: [IpNetwork: Set<ResourceId>] = [:]

        func allows(source: IpAddress) -> Bool {
            source == .v4(ipv4) || source == .v6(ipv6) || allowedSources.keys.contains { $0.contains(source) }
        }
    }

    private(set) var peers: [GatewayId: Peer] = [:]
    private var byTunnelIp: [IpAddress: GatewayId] = [:]
    private(set) var authorized: [ResourceId: GatewayId] = [:]
    /// Outlives a peer: the site's status follows its gateways' connections.
    private var sitesByGateway: [GatewayId: Set<SiteId>] = [:]

    /// Sorted, as `create_flow`'s `connected_gateway_ids` wants them.
    var ids: [GatewayId] { peers.keys.sorted() }

    /// The gateway a resource is authorised on, while that gateway is a peer.
    func gateway(for resource: ResourceId) -> GatewayId? {
        guard let gateway = authorized[resource], peers[gateway] != nil else { return nil }
        return gateway
    }

    /// The gateway whose tunnel address this is.
    func gateway(atTunnelAddress address: IpAddress) -> GatewayId? {
        byTunnelIp[address]
    }

    func sites(of gateway: GatewayId) -> Set<SiteId> {
        sitesByGateway[gateway] ?? []
    }

    /// `flow_created`: the resource is authorised on the gateway, which becomes a peer (or keeps its entry).
    mutating func authorize(_ resource: ResourceId, on gateway: GatewayId, site: SiteId, ipv4: IPv4Address, ipv6: IPv6Address) {
        authorized[resource] = gateway
        sitesByGateway[gateway, default: []].insert(site)
        guard peers[gateway] == nil else { return }
        peers[gateway] = Peer(ipv4: ipv4, ipv6: ipv6)
        byTunnelIp[.v4(ipv4)] = gateway
        byTunnelIp[.v6(ipv6)] = gateway
    }

    /// Lets a gateway send from `networks` on behalf of `resource`.
    mutating func allow(_ networks: [IpNetwork], for resource: ResourceId, on gateway: GatewayId) {
        for network in networks { peers[gateway]?.allowedSources[network, default: []].insert(resource) }
    }

    func allows(source: IpAddress, from gateway: GatewayId) -> Bool {
        peers[gateway]?.allows(source: source) ?? false
    }

    /// Forgets a resource's authorisation and the sources it allowed; returns its gateway when that is left
    /// allowing nothing (the caller closes it).
    mutating func revoke(_ resource: ResourceId) -> GatewayId? {
        guard let gateway = authorized.removeValue(forKey: resource), var peer = peers[gateway] else { return nil }
        for (network, var resources) in peer.allowedSources {
            resources.remove(resource)
            peer.allowedSources[network] = resources.isEmpty ? nil : resources
        }
        peers[gateway] = peer
        guard peer.allowedSources.isEmpty else { return nil }
        removePeer(gateway)
        return gateway
    }

    /// After a failed connection or a Goodbye: the gateway and every authorisation on it go, so the next
    /// packet asks the portal again.
    mutating func forget(_ gateway: GatewayId) {
        authorized = authorized.filter { $0.value != gateway }
        removePeer(gateway)
    }

    mutating func forgetAuthorizations() {
        authorized.removeAll()
    }

    private mutating func removePeer(_ gateway: GatewayId) {
        guard let peer = peers.removeValue(forKey: gateway) else { return }
        byTunnelIp[.v4(peer.ipv4)] = nil
        byTunnelIp[.v6(peer.ipv6)] = nil
    }
}
