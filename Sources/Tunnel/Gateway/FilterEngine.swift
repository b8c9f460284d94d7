import IpPacket
import PortalMessages

/// What a resource's filters allow (spec `tunnel-dns.md` §5.3): everything, or TCP and UDP port ranges and
/// ICMP. An empty filter list allows everything.
public enum FilterEngine: Hashable, Sendable {
    case permitAll
    case rules(tcp: [ClosedRange<UInt16>], udp: [ClosedRange<UInt16>], icmp: Bool)

    public init(_ filters: [TrafficFilter]) {
        guard !filters.isEmpty else {
            self = .permitAll
            return
        }
        var tcp: [ClosedRange<UInt16>] = [], udp: [ClosedRange<UInt16>] = [], icmp = false
        for filter in filters {
            switch filter {
            case .tcp(let ports): tcp.append(ports)
            case .udp(let ports): udp.append(ports)
            case .icmp: icmp = true
            }
        }
        self = .rules(tcp: tcp, udp: udp, icmp: icmp)
    }

    /// The union of several resources' filters: PermitAll if any of them is.
    public static func union(_ engines: [FilterEngine]) -> FilterEngine {
        var tcp: [ClosedRange<UInt16>] = [], udp: [ClosedRange<UInt16>] = [], icmp = false
        for engine in engines {
            guard case let .rules(moreTcp, moreUdp, moreIcmp) = engine else { return .permitAll }
            tcp += moreTcp
            udp += moreUdp
            icmp = icmp || moreIcmp
        }
        return .rules(tcp: tcp, udp: udp, icmp: icmp)
    }

    /// Whether the packet may pass, judged by its destination port (outbound) or source port (replies).
    /// ICMP of any type needs the ICMP flag; other protocols need PermitAll.
    public func permits(_ packet: IpPacket, byDestination: Bool) -> Bool {
        guard case let .rules(tcp, udp, icmp) = self else { return true }
        if let header = packet.tcp {
            let port = byDestination ? header.destinationPort : header.sourcePort
            return tcp.contains { $0.contains(port) }
        }
        if let header = packet.udp {
            let port = byDestination ? header.destinationPort : header.sourcePort
            return udp.contains { $0.contains(port) }
        }
        if packet.isIcmpv4 || packet.isIcmpv6 { return icmp }
        return false
    }
}
