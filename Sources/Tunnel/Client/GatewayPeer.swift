import PortalMessages
import SansIO

/// A gateway the client has a connection to (spec §4.1): its tunnel addresses and which sources it may
/// send from, per resource.
final class GatewayPeer {
    let id: GatewayId
    var ipv4: IPv4Address
    var ipv6: IPv6Address
    var allowedSources: [IpNetwork: Set<ResourceId>] = [:]

    init(id: GatewayId, ipv4: IPv4Address, ipv6: IPv6Address) {
        self.id = id
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    func allows(source: IpAddress) -> Bool {
        source == .v4(ipv4) || source == .v6(ipv6) || allowedSources.keys.contains { $0.contains(source) }
    }

    func allow(_ networks: [IpNetwork], for resource: ResourceId) {
        for network in networks { allowedSources[network, default: []].insert(resource) }
    }

    /// Forgets a resource's sources; `true` when nothing is left.
    func revoke(_ resource: ResourceId) -> Bool {
        for (network, var resources) in allowedSources {
            resources.remove(resource)
            allowedSources[network] = resources.isEmpty ? nil : resources
        }
        return allowedSources.isEmpty
    }
}
