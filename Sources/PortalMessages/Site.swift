import SansIO

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
