import Dns
import IpPacket

/// Where the client forwards queries it does not answer itself.
public enum DnsUpstream: Hashable, Sendable, CustomStringConvertible {
    /// Plain DNS on port 53.
    case do53(IpAddress)
    /// DNS over HTTPS at this URL.
    case doh(String)

    public var description: String {
        switch self {
        case .do53(let ip): SocketAddress(ip: ip, port: 53).description
        case .doh(let url): url
        }
    }
}

/// The sentinel IPs the OS is told to use as DNS servers, each standing for one upstream (spec
/// `tunnel-dns.md` §4.6.1): portal Do53 servers win over portal DoH URLs, which win over the system's
/// resolvers; sentinels are filtered out of every list and duplicates dropped, in order.
public struct DnsSentinels: Sendable {
    public static let ipv4Range: UInt32 = 0x6464_6F00                     // 100.100.111.0/24
    public static let ipv6High: UInt64 = 0xFD00_2021_1111_8000
    public static let ipv6LowBase: UInt64 = 0x0100_0100_0111_0000          // …:100:100:111:0/120

    /// (sentinel, upstream) pairs in upstream priority order.
    public private(set) var mapping: [(sentinel: IpAddress, upstream: DnsUpstream)] = []
    /// Whether the upstreams came from the portal rather than the OS.
    public private(set) var hasCustomUpstream = false

    public init() {}

    /// Recomputes the mapping when the set of effective upstreams changed; returns whether it did, so the
    /// caller flushes its DNS cache and emits a new TUN configuration.
    @discardableResult
    public mutating func update(portalDo53: [IpAddress], portalDoh: [String], system: [IpAddress]) -> Bool {
        let do53 = Self.deduplicated(portalDo53.filter { !Self.isSentinel($0) })
        let doh = Self.deduplicated(portalDoh)
        let effective: [DnsUpstream] =
            if !do53.isEmpty { do53.map(DnsUpstream.do53) }
            else if !doh.isEmpty { doh.map(DnsUpstream.doh) }
            else { Self.deduplicated(system.filter { !Self.isSentinel($0) }).map(DnsUpstream.do53) }
        guard Set(effective) != Set(mapping.map(\.upstream)) else { return false }
        let previous = Set(mapping.map(\.sentinel))
        var free4 = (1...254).lazy.map { IpAddress.v4(IPv4Address(Self.ipv4Range + UInt32($0))) }.filter { !previous.contains($0) }.makeIterator()
        var free6 = (0...255).lazy.map { IpAddress.v6(IPv6Address(high: Self.ipv6High, low: Self.ipv6LowBase + UInt64($0))) }
            .filter { !previous.contains($0) }.makeIterator()
        mapping = effective.compactMap { upstream in
            let sentinel: IpAddress? = switch upstream {
            case .do53(.v6): free6.next()
            case .do53(.v4), .doh: free4.next()
            }
            return sentinel.map { ($0, upstream) }
        }
        hasCustomUpstream = !do53.isEmpty || !doh.isEmpty
        return true
    }

    /// The upstream a sentinel stands for; `nil` for an unmapped address.
    public func upstream(for sentinel: IpAddress) -> DnsUpstream? {
        mapping.first { $0.sentinel == sentinel }?.upstream
    }

    /// Whether `ip` lies in either sentinel range.
    public static func isSentinel(_ ip: IpAddress) -> Bool {
        switch ip {
        case .v4(let v4): v4.value & 0xFFFF_FF00 == ipv4Range
        case .v6(let v6): v6.high == ipv6High && v6.low & ~0xFF == ipv6LowBase
        }
    }

    private static func deduplicated<T: Hashable>(_ items: [T]) -> [T] {
        var seen = Set<T>()
        return items.filter { seen.insert($0).inserted }
    }
}
