import FoundationEssentials

/// A portal-assigned UUID, typed by what it names so a gateway id cannot be passed where a resource id is
/// meant. Encoded lowercase, as Firezone's Rust `uuid` crate writes it.
public struct PortalId<Tag>: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let uuid: UUID

    public init(_ uuid: UUID) {
        self.uuid = uuid
    }

    /// Parses the hyphenated UUID text form (either case).
    public init?(_ text: String) {
        guard let uuid = UUID(uuidString: text) else { return nil }
        self.uuid = uuid
    }

    /// A fresh random (version 4) id.
    public static func random() -> Self { Self(UUID()) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let uuid = UUID(uuidString: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a UUID")
        }
        self.uuid = uuid
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { uuid.uuidString.lowercased() }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.description < rhs.description }
}

public enum ResourceTag {}
public enum GatewayTag {}
public enum ClientTag {}
public enum RelayTag {}
public enum SiteTag {}

public typealias ResourceId = PortalId<ResourceTag>
public typealias GatewayId = PortalId<GatewayTag>
public typealias ClientId = PortalId<ClientTag>
public typealias RelayId = PortalId<RelayTag>
public typealias SiteId = PortalId<SiteTag>
