import SansIO

/// A resource as the gateway sees it (spec §2.5). There is no unknown variant: an unknown type fails the
/// whole message.
public enum GatewayResource: Hashable, Sendable, Codable {
    case dns(id: ResourceId, address: String, name: String, filters: [TrafficFilter])
    case cidr(id: ResourceId, address: IpNetwork, name: String, filters: [TrafficFilter])
    case internet(id: ResourceId)

    public var id: ResourceId {
        switch self {
        case .dns(let id, _, _, _), .cidr(let id, _, _, _), .internet(let id): id
        }
    }

    /// The resource's filters; the Internet resource has none, which allows everything.
    public var filters: [TrafficFilter] {
        switch self {
        case .dns(_, _, _, let filters), .cidr(_, _, _, let filters): filters
        case .internet: []
        }
    }

    private enum CodingKeys: String, CodingKey { case id, type, address, name, filters }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        let id = try container.decode(ResourceId.self, forKey: .id)
        switch type {
        case "dns":
            self = .dns(id: id, address: try container.decode(String.self, forKey: .address),
                        name: try container.decode(String.self, forKey: .name),
                        filters: try container.decode([TrafficFilter].self, forKey: .filters))
        case "cidr":
            self = .cidr(id: id, address: try container.decode(IpNetwork.self, forKey: .address),
                         name: try container.decode(String.self, forKey: .name),
                         filters: try container.decode([TrafficFilter].self, forKey: .filters))
        case "internet":
            self = .internet(id: id)
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown resource type '\(type)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        switch self {
        case .dns(_, let address, let name, let filters):
            try container.encode("dns", forKey: .type)
            try container.encode(address, forKey: .address)
            try container.encode(name, forKey: .name)
            try container.encode(filters, forKey: .filters)
        case .cidr(_, let address, let name, let filters):
            try container.encode("cidr", forKey: .type)
            try container.encode(address, forKey: .address)
            try container.encode(name, forKey: .name)
            try container.encode(filters, forKey: .filters)
        case .internet:
            try container.encode("internet", forKey: .type)
        }
    }
}
