/// ICE username fragment and password (spec §2: the portal makes them 4 and 22 characters).
public struct IceCredentials: Hashable, Sendable, Codable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// A site (also called a gateway group): equal by `id` alone, as in Firezone.
public struct Site: Hashable, Sendable, Codable {
    public var id: SiteId
    public var name: String

    public init(id: SiteId, name: String) {
        self.id = id
        self.name = name
    }

    public static func == (lhs: Site, rhs: Site) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// Which IP families a DNS resource resolves to.
public enum IpStack: String, Hashable, Sendable, Codable, CaseIterable {
    case dual
    case ipv4Only = "ipv4_only"
    case ipv6Only = "ipv6_only"
}
