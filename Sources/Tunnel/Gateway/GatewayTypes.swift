import Dns
import DnsNat
import IpPacket
import PortalMessages
import SansIO

/// What the gateway asks of its IO layer besides sending datagrams.
public enum GatewayEvent: Hashable, Sendable {
    /// Configure the TUN device with these addresses (from `init`).
    case interfaceConfigured(ipv4: IPv4Address, ipv6: IPv6Address)
    /// Resolve a DNS resource's domain for a client, then call ``GatewayState/resolved(_:result:now:)``.
    case resolve(GatewayResolveRequest)
    /// `authorize_flow` arrived while no relay is known: reconnect to the portal to get relays (spec §5.2).
    case noRelays
    /// A portal message that could not be applied, with the reason (logged by the app, never fatal).
    case refused(String)
    /// A client asked the gateway's TUN DNS server (spec §5.9): forward the query to the fastest nameserver,
    /// then call ``GatewayState/dnsAnswered(_:response:now:)``.
    case forwardDns(GatewayDnsQuery)
}

/// A DNS query a client sent to `TUN IP:53535`, with what is needed to answer it on its transport.
public struct GatewayDnsQuery: Hashable, Sendable {
    public var client: ClientId
    public var query: DnsMessage
    /// The client's socket and ours (`TUN IP:53535`).
    public var asker: SocketAddress
    public var server: SocketAddress
    public var overTcp: Bool
}

/// A domain to resolve for one client.
public struct GatewayResolveRequest: Hashable, Sendable {
    public var client: ClientId
    public var request: GatewayDnsNat.ResolveRequest
}

/// Why a packet from a client or from the TUN device did not go on (spec §5.4, §5.5). Counted per reason.
public enum GatewayDrop: Hashable, Sendable, CaseIterable {
    /// A client sent an ICMP error (clients may not inject them).
    case outboundIcmpError
    /// Wrong source, no resource, or a filter refused it: answered with ICMP "prohibited".
    case prohibited
    /// A proxy IP without a usable translation: answered with ICMP "unreachable".
    case unreachable
    /// A reply for an address outside the tunnel ranges, or for no known client.
    case notAPeer
    /// A reply that belongs to an expired DNS-resource NAT session.
    case expiredNatSession
    /// A reply from a source no authorised resource covers.
    case notAllowed
    /// No path to the client yet (the gateway never buffers).
    case noPath
    /// The client is still authorised but its connection is gone (closed, or idle past WireGuard's expiry):
    /// Firezone's `NotConnected` unroutable packet, not an error.
    case notConnected
    /// A packet to the TUN DNS server that is not a valid query.
    case badDnsQuery
}

/// Counters for metrics.
public struct GatewayStatistics: Hashable, Sendable {
    public var drops: [GatewayDrop: Int] = [:]
    /// Packets the strict parser refused.
    public var malformed = 0
    public var toTun = 0
    public var toClients = 0

    mutating func count(_ drop: GatewayDrop) {
        drops[drop, default: 0] += 1
    }
}
