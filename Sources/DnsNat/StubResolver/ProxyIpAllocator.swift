import Dns
import IpPacket

/// Hands out proxy IPs for DNS-resource domains (spec `tunnel-dns.md` §4.6.4, HEAD semantics): 4 IPv4 from
/// 100.96.0.0/11 (never the network or broadcast address, never the sentinel 100.100.111.0/24) and 4 IPv6
/// from fd00:2021:1111:8000::/107 per domain, walking each range in order and never reusing an address.
/// Records export and import, so a restarted client keeps every name on the same IPs (§4.6.5).
public struct ProxyIpAllocator: Sendable {
    public static let perFamily = 4
    static let ipv4Network: UInt32 = 0x6460_0000          // 100.96.0.0/11
    static let ipv4Broadcast: UInt32 = 0x647F_FFFF
    static let sentinel: ClosedRange<UInt32> = 0x6464_6F00...0x6464_6FFF   // 100.100.111.0/24
    static let ipv6High: UInt64 = 0xFD00_2021_1111_8000
    static let ipv6Count: UInt64 = 1 << 21

    /// The proxy IPs of each domain, in allocation order (IPv4 first).
    public private(set) var records: [DnsName: [IpAddress]] = [:]
    /// Which domain a proxy IP stands for.
    public private(set) var domainByIp: [IpAddress: DnsName] = [:]
    private var nextIPv4 = ipv4Network + 1
    private var nextIPv6: UInt64 = 0
    /// How many allocations came up short because a range ran out.
    public private(set) var exhaustionCount = 0

    public init() {}

    /// The domain's proxy IPs, allocating 4 + 4 on first use.
    public mutating func ips(for domain: DnsName) -> [IpAddress] {
        if let existing = records[domain] { return existing }
        var ips: [IpAddress] = []
        for _ in 0..<Self.perFamily {
            guard let next = takeIPv4() else { exhaustionCount += 1; break }
            ips.append(.v4(next))
        }
        for _ in 0..<Self.perFamily {
            guard nextIPv6 < Self.ipv6Count else { exhaustionCount += 1; break }
            ips.append(.v6(IPv6Address(high: Self.ipv6High, low: nextIPv6)))
            nextIPv6 += 1
        }
        record(domain, ips)
        return ips
    }

    /// All records, for the event loop to keep across sessions.
    public func exported() -> [(domain: DnsName, ips: [IpAddress])] {
        records.map { ($0.key, $0.value) }.sorted { $0.domain.description < $1.domain.description }
    }

    /// Restores exported records. Later allocations continue after the highest imported addresses, so no
    /// address is ever handed to a second domain. Records that are malformed or collide are skipped.
    public mutating func importRecords(_ exported: [(domain: DnsName, ips: [IpAddress])]) {
        for (domain, ips) in exported where records[domain] == nil && ips.allSatisfy({ domainByIp[$0] == nil && Self.isProxyIp($0) }) {
            record(domain, ips)
            for ip in ips {
                switch ip {
                case .v4(let v4): nextIPv4 = max(nextIPv4, v4.value + 1)
                case .v6(let v6): nextIPv6 = max(nextIPv6, v6.low + 1)
                }
            }
        }
        if Self.sentinel.contains(nextIPv4) { nextIPv4 = Self.sentinel.upperBound + 1 }
    }

    /// Whether `ip` lies in the proxy ranges (and outside the sentinel /24).
    public static func isProxyIp(_ ip: IpAddress) -> Bool {
        switch ip {
        case .v4(let v4): v4.value > ipv4Network && v4.value < ipv4Broadcast && !sentinel.contains(v4.value)
        case .v6(let v6): v6.high == ipv6High && v6.low < ipv6Count
        }
    }

    private mutating func takeIPv4() -> IPv4Address? {
        if Self.sentinel.contains(nextIPv4) { nextIPv4 = Self.sentinel.upperBound + 1 }
        guard nextIPv4 < Self.ipv4Broadcast else { return nil }
        defer { nextIPv4 += 1 }
        return IPv4Address(nextIPv4)
    }

    private mutating func record(_ domain: DnsName, _ ips: [IpAddress]) {
        records[domain] = ips
        for ip in ips { domainByIp[ip] = domain }
    }
}
