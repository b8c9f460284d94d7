/// One traffic filter of a gateway resource (spec §2.3), internally tagged on `protocol`. An empty filter list
/// allows everything.
public enum TrafficFilter: Hashable, Sendable, Codable {
    case tcp(ClosedRange<UInt16>)
    case udp(ClosedRange<UInt16>)
    case icmp

    private enum CodingKeys: String, CodingKey {
        case `protocol`, portRangeStart = "port_range_start", portRangeEnd = "port_range_end"
    }

    /// Firezone leaves a start above the end unchecked (its range set would panic); we refuse it here.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .protocol)
        if kind == "icmp" {
            self = .icmp
            return
        }
        let start = try container.decodeIfPresent(UInt16.self, forKey: .portRangeStart) ?? 0
        let end = try container.decodeIfPresent(UInt16.self, forKey: .portRangeEnd) ?? .max
        guard start <= end else {
            throw DecodingError.dataCorruptedError(forKey: .portRangeStart, in: container,
                                                   debugDescription: "port range \(start)-\(end) starts above its end")
        }
        switch kind {
        case "tcp": self = .tcp(start...end)
        case "udp": self = .udp(start...end)
        default:
            throw DecodingError.dataCorruptedError(forKey: .protocol, in: container, debugDescription: "unknown filter protocol '\(kind)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .icmp:
            try container.encode("icmp", forKey: .protocol)
        case .tcp(let ports), .udp(let ports):
            try container.encode(self == .tcp(ports) ? "tcp" : "udp", forKey: .protocol)
            guard ports != 0...UInt16.max else { return }  // the portal's rendering of "all ports"
            try container.encode(ports.lowerBound, forKey: .portRangeStart)
            try container.encode(ports.upperBound, forKey: .portRangeEnd)
        }
    }
}
