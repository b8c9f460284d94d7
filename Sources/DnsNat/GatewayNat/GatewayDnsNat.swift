import Dns
import IpPacket

/// A Gateway's DNS-resource translation for one Client (spec `tunnel-dns.md` §5.6.3–§5.6.5): which real IP
/// each of the Client's proxy IPs stands for, and the NAT sessions built on that.
public struct GatewayDnsNat: Sendable {
    /// What one proxy IP translates to.
    public struct Translation: Hashable, Sendable {
        public var domain: DnsName
        public var resources: Set<ResourceId>
        /// `nil` when the domain resolved to nothing of this proxy's family: packets get "unreachable".
        public var realIp: IpAddress?
    }

    /// Why `setupNat` refused.
    public enum SetupError: Error, Hashable, Sendable {
        case domainDoesNotMatchPattern(domain: DnsName, pattern: DomainPattern)
    }

    /// What to do with a packet from the Client.
    public enum Outbound: Hashable, Sendable {
        /// Not a proxy IP (CIDR or Internet traffic): send unchanged.
        case notProxyTraffic
        /// Rewritten to the real IP: send.
        case translated
        /// No translation or no real IP of the family: answer with ICMP "network unreachable".
        case unreachable
    }

    public private(set) var translations: [IpAddress: Translation] = [:]
    public private(set) var table = GatewayNatTable()
    /// How many times the Client re-numbered and the table was cleared.
    public private(set) var renumberCount = 0

    public init() {}

    /// Maps the Client's proxy IPs for `domain` onto its resolved IPs: proxies and addresses sorted, each
    /// family cycling through its resolved addresses. A proxy IP already translating another domain means
    /// the Client re-numbered (it restarted): those proxies' translations and sessions are cleared first. Open
    /// sessions of a re-resolved domain keep their real IP.
    public mutating func setupNat(domain: DnsName, resource: DnsResource, resolved: [IpAddress], proxyIps: [IpAddress]) throws(SetupError) {
        guard resource.pattern.matches(domain) else {
            throw .domainDoesNotMatchPattern(domain: domain, pattern: resource.pattern)
        }
        let renumbered = Set(proxyIps.filter { translations[$0].map { $0.domain != domain } ?? false })
        if !renumbered.isEmpty {
            // Only the proxies that now name another domain are stale: the Client assigns every proxy IP before it
            // uses it, and what it assigned since it restarted must survive (Firezone clears everything, which
            // breaks the domains set up between the restart and the first collision).
            for proxy in renumbered { translations[proxy] = nil }
            table.removeSessions(to: renumbered)
            renumberCount += 1
        }
        let resolvedV4 = resolved.filter { $0.version == .v4 }.sorted()
        let resolvedV6 = resolved.filter { $0.version == .v6 }.sorted()
        var v4Index = 0, v6Index = 0
        for proxy in proxyIps.sorted() {
            let realIp: IpAddress?
            if proxy.version == .v4 {
                realIp = resolvedV4.isEmpty ? nil : resolvedV4[v4Index % resolvedV4.count]
                v4Index += 1
            } else {
                realIp = resolvedV6.isEmpty ? nil : resolvedV6[v6Index % resolvedV6.count]
                v6Index += 1
            }
            var translation = translations[proxy] ?? Translation(domain: domain, resources: [], realIp: nil)
            translation.resources.insert(resource.id)
            translation.realIp = realIp
            translations[proxy] = translation
        }
    }

    /// Translates a packet from the Client.
    public mutating func outbound(_ packet: inout IpPacket, now: Instant) throws(IpPacketError) -> Outbound {
        guard ProxyIpAllocator.isProxyIp(packet.destination) else { return .notProxyTraffic }
        guard let realIp = translations[packet.destination]?.realIp, realIp.version == packet.version else {
            return .unreachable
        }
        try table.translateOutbound(&packet, to: realIp, now: now)
        return .translated
    }

    /// Translates a reply on its way back to the Client.
    public mutating func inbound(_ packet: inout IpPacket, now: Instant) throws(IpPacketError) -> GatewayNatTable.Inbound {
        try table.translateInbound(&packet, now: now)
    }

    /// The 1 s tick: expire sessions.
    public mutating func expire(now: Instant) {
        table.expire(now: now)
    }
}
