/// A push this client does not implement, and so ignores (spec §8): what the portal sends clients of the
/// version we announce for client-to-client access and device pools, and resources of such types.
public struct UnsupportedPush: Hashable, Sendable, CustomStringConvertible {
    public var event: String
    /// For `resource_created_or_updated`: the resource's type and id.
    public var resourceType: String?
    public var resourceId: ResourceId?

    public init(event: String, resourceType: String? = nil, resourceId: ResourceId? = nil) {
        self.event = event
        self.resourceType = resourceType
        self.resourceId = resourceId
    }

    /// The events of Firezone's newest client that ours leaves alone. `access_authorization_expiry_updated` is
    /// obsolete (#13717) but still sent by some portals.
    public static let clientEvents: Set<String> = [
        "client_ice_candidates", "invalidate_client_ice_candidates", "client_device_access_authorized",
        "client_device_access_denied", "client_ice_candidate_error", "device_pool_domain_resolved",
        "device_pool_domain_resolution_failed", "resource_filters_updated", "reject_access",
        "access_authorization_expiry_updated",
    ]

    public var description: String {
        guard let resourceType else { return "'\(event)'" }
        return "'\(event)' for a \(resourceType) resource\(resourceId.map { " \($0)" } ?? "")"
    }
}

/// A resource of a type this client does not implement, left out of `init`; encodes as its type and id.
public struct UnsupportedResource: Hashable, Sendable, Encodable, CustomStringConvertible {
    public var type: String
    public var id: ResourceId?

    public init(type: String, id: ResourceId?) {
        self.type = type
        self.id = id
    }

    public var description: String { "\(type) \(id.map { "\($0)" } ?? "without id")" }

    private enum CodingKeys: String, CodingKey { case type, id }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try container.encodeIfPresent(id, forKey: .id)
    }
}

/// `ICE-less` support, as `set_snownet_capabilities` announces it (§8). Missing fields are `false`.
public struct SnownetCapabilities: Hashable, Sendable, Codable {
    public var iceless: Bool

    public init(iceless: Bool = false) {
        self.iceless = iceless
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        iceless = try container.decodeIfPresent(Bool.self, forKey: .iceless) ?? false
    }

    private enum CodingKeys: String, CodingKey { case iceless }
}

/// A client resource, or the type and id of one this client does not implement.
enum ResourceOrUnsupported: Decodable {
    case resource(ClientResource)
    case unsupported(type: String, id: ResourceId?)

    private enum CodingKeys: String, CodingKey { case type, id }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        guard ClientResource.types.contains(type) else {
            self = .unsupported(type: type, id: try? container.decodeIfPresent(ResourceId.self, forKey: .id))
            return
        }
        self = .resource(try ClientResource(from: decoder))
    }
}
