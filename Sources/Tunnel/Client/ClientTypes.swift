import Dns
import DnsNat
import IpPacket
import PortalMessages
import SansIO

/// The TUN device's configuration (spec `tunnel-dns.md` §4.3).
public struct TunConfig: Hashable, Sendable {
    public var ipv4: IPv4Address
    public var ipv6: IPv6Address
    /// Sorted by family, then prefix length (longest first), then address.
    public var routes: [IpNetwork]
    /// The sentinel addresses to configure as the system's DNS servers.
    public var dnsServers: [IpAddress]
    /// The account's search domain, for the system's resolver configuration.
    public var searchDomain: String? = nil
}

/// What the client asks of its app besides sending datagrams. Emitted only on change.
public enum ClientEvent: Hashable, Sendable {
    /// Configure the TUN device so. Only the latest is queued: a newer one replaces one not yet polled (#10223).
    case tunInterfaceUpdated(TunConfig)
    /// Every resource with its status, sorted by id; emitted when a resource or a status changes, and like the
    /// TUN configuration only the latest is queued.
    case resourcesChanged([ResourceView])
    /// `flow_created` arrived while no relay is known: reconnect to the portal for a new `init`.
    case noRelays
    /// A portal message that could not be applied, with the reason.
    case refused(String)
    /// A portal message for something this client does not implement (client-to-client access, device pools):
    /// ignored, as the Firezone clients the portal meant it for would use it.
    case ignored(UnsupportedPush)
    /// Resolve this query with the upstream, then call ``ClientState/dnsAnswered(_:response:now:)``.
    case recurseDns(ClientDns.PendingQuery, upstream: DnsUpstream)
    /// The stub resolver assigned proxy IPs to a new domain: keep all records for the next session
    /// (spec §4.6.5), so proxy IPs stay the same across sign-out, restart and reconnect.
    case proxyIpRecordsChanged([ProxyIpRecord])
}

/// How reachable a site, or a resource through its sites, is (spec §4.7).
public enum ResourceStatus: String, Hashable, Sendable {
    /// Nothing known yet, or the gateway was cleaned up.
    case unknown
    /// A gateway of the site finished connecting.
    case online
    /// The portal said the site is offline.
    case offline
}

/// A resource as the UI shows it.
public struct ResourceView: Hashable, Sendable {
    public var resource: ClientResource
    public var status: ResourceStatus
}

/// A domain's proxy IPs, as kept across sessions (spec §4.6.5).
public struct ProxyIpRecord: Hashable, Sendable {
    public var domain: DnsName
    public var ips: [IpAddress]

    public init(domain: DnsName, ips: [IpAddress]) {
        self.domain = domain
        self.ips = ips
    }
}

/// Why the client dropped a packet (spec §4.4, §4.5). Counted per reason.
public enum ClientDrop: Hashable, Sendable, CaseIterable {
    case multicast
    case unconfigured
    case badSource
    case unknownPeer
    case unknownResource
    /// A gateway's packet from a source outside what it was authorised for.
    case notAllowed
    /// A full intent buffer overwrote its oldest packet.
    case bufferFull
    /// A packet to a DNS sentinel that is not a valid query.
    case badDnsQuery
    /// The gateway is still a peer but its connection is gone: Firezone's `NotConnected` unroutable packet.
    case notConnected
}

/// Counters for metrics.
public struct ClientStatistics: Hashable, Sendable {
    public var drops: [ClientDrop: Int] = [:]
    public var malformed = 0

    mutating func count(_ drop: ClientDrop) {
        drops[drop, default: 0] += 1
    }
}

/// Firezone's fixed address plan (spec `tunnel-dns.md` §1, §4.3): tunnel addresses, proxy IPs for DNS
/// resources, and the DNS sentinels, each in both families.
public enum AddressPlan {
    public static let tunnelV4 = IpNetwork("100.64.0.0/11")!
    public static let tunnelV6 = IpNetwork("fd00:2021:1111::/107")!
    public static let proxyV4 = IpNetwork("100.96.0.0/11")!
    public static let proxyV6 = IpNetwork("fd00:2021:1111:8000::/107")!
    public static let sentinelV4 = IpNetwork("100.100.111.0/24")!
    public static let sentinelV6 = IpNetwork("fd00:2021:1111:8000:100:100:111:0/120")!
    public static let everythingV4 = IpNetwork("0.0.0.0/0")!
    public static let everythingV6 = IpNetwork("::/0")!

    /// The routes every client's TUN device has, whatever its resources.
    public static var fixedRoutes: [IpNetwork] { [tunnelV4, tunnelV6, proxyV4, proxyV6, sentinelV4, sentinelV6] }

    /// Whether `address` is a client's or gateway's tunnel address.
    public static func isTunnel(_ address: IpAddress) -> Bool {
        tunnelV4.contains(address) || tunnelV6.contains(address)
    }
}
