import Dns
import DnsNat
import IpPacket
import PortalMessages
import SansIO

/// What the gateway keeps per client (spec `tunnel-dns.md` §5.1): its tunnel addresses, the resources it
/// may reach with their expiry, the filter table built from them, and its DNS-resource translations. It
/// outlives the client's connections (§5.11).
final class ClientOnGateway {
    /// One authorised resource; `expiresAt` in Unix seconds, `nil` for never.
    struct Authorization {
        var resource: GatewayResource
        var expiresAt: Int64?
    }

    struct FilterEntry {
        var network: IpNetwork
        var engine: FilterEngine
        var resource: ResourceId
    }

    let id: ClientId
    var ipv4: IPv4Address
    var ipv6: IPv6Address
    var authorizations: [ResourceId: Authorization] = [:]
    /// Longest prefix first.
    private(set) var filters: [FilterEntry] = []
    var dnsNat = GatewayDnsNat()
    /// The latest `authorize_flow`'s client and actor details, for flow logs.
    var flowContext = FlowContext()

    init(id: ClientId, ipv4: IPv4Address, ipv6: IPv6Address) {
        self.id = id
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    var hasInternetResource: Bool {
        authorizations.values.contains { if case .internet = $0.resource { true } else { false } }
    }

    /// The authorised DNS resource with this id, in DnsNat's terms.
    func dnsResource(_ id: ResourceId) -> DnsResource? {
        guard case .dns(_, let address, _, _)? = authorizations[id]?.resource else { return nil }
        return DnsResource(id: id, pattern: DomainPattern(address))
    }

    /// Rebuilds the filter table (spec §5.3, the 2025 rule): each CIDR network gets the union of the filters
    /// of every authorised resource containing it; each proxy IP gets its DNS resources' filters.
    func recomputeFilters() {
        var entries: [FilterEntry] = []
        for (id, authorization) in authorizations {
            guard case .cidr(_, let network, _, _) = authorization.resource else { continue }
            let containing = authorizations.values.filter { other in
                switch other.resource {
                case .cidr(_, let otherNetwork, _, _):
                    otherNetwork.prefixLength <= network.prefixLength && otherNetwork.contains(network.address)
                case .internet:
                    true
                case .dns:
                    false
                }
            }
            entries.append(FilterEntry(network: network, engine: .union(containing.map { FilterEngine($0.resource.filters) }),
                                       resource: id))
        }
        for (proxyIp, translation) in dnsNat.translations {
            let resources = authorizations.filter { id, _ in translation.resources.contains { $0.description == id.description } }
            guard let first = resources.first?.key,
                  let network = IpNetwork(address: proxyIp, prefixLength: proxyIp.version == .v4 ? 32 : 128)
            else { continue }
            entries.append(FilterEntry(network: network,
                                       engine: .union(resources.values.map { FilterEngine($0.resource.filters) }),
                                       resource: first))
        }
        filters = entries.sorted { $0.network.prefixLength > $1.network.prefixLength }
    }

    /// The filters that apply to an address, by longest prefix; `nil` when no resource covers it.
    func filter(for address: IpAddress) -> FilterEngine? {
        filters.first { $0.network.contains(address) }?.engine
    }

    /// The resource whose network holds `address` (the most specific one).
    func resource(for address: IpAddress) -> ResourceId? {
        filters.first { $0.network.contains(address) }?.resource
    }

    /// A new flow's details for its log record: the client's, the resource's, and the domain behind a proxy IP.
    func flowContext(resource: ResourceId?, destination: IpAddress) -> FlowContext {
        var context = flowContext
        switch resource.flatMap({ authorizations[$0]?.resource }) {
        case let .dns(_, address, name, _)?:
            (context.resourceName, context.resourceAddress) = (name, address)
        case let .cidr(_, address, name, _)?:
            (context.resourceName, context.resourceAddress) = (name, address.description)
        case .internet?, nil:
            break
        }
        context.innerDomain = dnsNat.translations[destination]?.domain.description
        return context
    }

    func owns(_ address: IpAddress) -> Bool {
        address == .v4(ipv4) || address == .v6(ipv6)
    }
}
