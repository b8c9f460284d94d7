/// Which address families a DNS resource resolves to; its raw values are the portal's JSON.
public enum IpStack: String, Hashable, Sendable, Codable, CaseIterable {
    case dual
    case ipv4Only = "ipv4_only"
    case ipv6Only = "ipv6_only"

    public var allowsIPv4: Bool { self != .ipv6Only }
    public var allowsIPv6: Bool { self != .ipv4Only }
}
