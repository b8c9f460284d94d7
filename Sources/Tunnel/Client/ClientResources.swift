import PortalMessages
import SansIO

/// The client's resources and what follows from them alone (spec `tunnel-dns.md` §4.2, §4.4.2, §4.7): which
/// resource a destination belongs to, the routes the TUN device needs, and each resource's status through its
/// sites. Firezone's `client/routing` and resource list.
struct ClientResources {
    private(set) var byId: [ResourceId: ClientResource] = [:]
    private(set) var internetResourceEnabled: Bool
    /// One resource per CIDR network, longest prefix first.
    private(set) var activeCidrs: [(network: IpNetwork, resource: ResourceId)] = []
    private var siteStatus: [SiteId: ResourceStatus] = [:]
    private var lastViews: [ResourceView]?

    init(internetResourceEnabled: Bool) {
        self.internetResourceEnabled = internetResourceEnabled
    }

    subscript(id: ResourceId) -> ClientResource? { byId[id] }

    var ids: Dictionary<ResourceId, ClientResource>.Keys { byId.keys }

    /// Whether `resource` is reached differently from the one it updates (address, IP stack or sites): the old
    /// one must then be removed first, with its connection (spec §4.2).
    func changesAddressability(_ resource: ClientResource) -> Bool {
        guard let existing = byId[resource.id] else { return false }
        switch (existing, resource) {
        case let (.cidr(old), .cidr(new)):
            return old.address != new.address || Self.siteIds(old.sites) != Self.siteIds(new.sites)
        case let (.dns(old), .dns(new)):
            return old.address != new.address || old.ipStack != new.ipStack || Self.siteIds(old.sites) != Self.siteIds(new.sites)
        case let (.internet(old), .internet(new)):
            return Self.siteIds(old.sites) != Self.siteIds(new.sites)
        default:
            return true
        }
    }

    mutating func upsert(_ resource: ClientResource) {
        byId[resource.id] = resource
    }

    @discardableResult
    mutating func remove(_ id: ResourceId) -> ClientResource? {
        byId.removeValue(forKey: id)
    }

    /// The Internet resource, whether enabled or not.
    var internetResource: ResourceId? {
        byId.values.first { if case .internet = $0 { true } else { false } }?.id
    }

    /// The Internet resource while it is enabled.
    var activeInternetResource: ResourceId? {
        internetResourceEnabled ? internetResource : nil
    }

    /// Returns whether the setting changed.
    mutating func setInternetResource(enabled: Bool) -> Bool {
        guard enabled != internetResourceEnabled else { return false }
        internetResourceEnabled = enabled
        return true
    }

    /// One active resource per identical network: visiting ascending ids, a later one replaces the entry
    /// unless the current one is connected (spec §4.2 "CIDR overlap").
    mutating func recomputeActiveCidrs(isConnected: (ResourceId) -> Bool) {
        var byNetwork: [IpNetwork: ResourceId] = [:]
        for resource in byId.values.sorted(by: { $0.id < $1.id }) {
            guard case .cidr(let cidr) = resource else { continue }
            if let current = byNetwork[cidr.address], isConnected(current) { continue }
            byNetwork[cidr.address] = cidr.id
        }
        activeCidrs = byNetwork.map { ($0.key, $0.value) }.sorted { $0.network.prefixLength > $1.network.prefixLength }
    }

    /// Longest CIDR match, then the Internet resource (spec §4.4.2).
    func resource(for destination: IpAddress) -> ResourceId? {
        if let match = activeCidrs.first(where: { $0.network.contains(destination) }) { return match.resource }
        return activeInternetResource
    }

    /// The TUN device's routes: the active CIDRs, Firezone's fixed ranges and, with the Internet resource,
    /// everything; sorted by family, then longest prefix, then address.
    var routes: [IpNetwork] {
        var routes = activeCidrs.map(\.network) + AddressPlan.fixedRoutes
        if activeInternetResource != nil { routes += [AddressPlan.everythingV4, AddressPlan.everythingV6] }
        return Array(Set(routes)).sorted {
            ($0.address.version.rawValue, 255 - $0.prefixLength, $0.address) < ($1.address.version.rawValue, 255 - $1.prefixLength, $1.address)
        }
    }

    mutating func setStatus(_ status: ResourceStatus, ofSites sites: some Sequence<SiteId>) {
        for site in sites { siteStatus[site] = status }
    }

    /// A resource is online if any site is, offline if all are, else unknown (spec §4.7).
    func status(of resource: ResourceId) -> ResourceStatus {
        let statuses = (byId[resource]?.sites ?? []).map { siteStatus[$0.id] ?? .unknown }
        if statuses.contains(.online) { return .online }
        if !statuses.isEmpty, statuses.allSatisfy({ $0 == .offline }) { return .offline }
        return .unknown
    }

    /// Every resource with its status, sorted by id, when that list changed since the last call.
    mutating func changedViews() -> [ResourceView]? {
        let views = byId.values.sorted { $0.id < $1.id }.map { ResourceView(resource: $0, status: status(of: $0.id)) }
        guard views != lastViews else { return nil }
        lastViews = views
        return views
    }

    private static func siteIds(_ sites: [Site]) -> Set<SiteId> {
        Set(sites.map(\.id))
    }
}
