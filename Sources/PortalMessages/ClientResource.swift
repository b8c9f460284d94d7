import SansIO

/// A resource as the client sees it (spec §2.4). Extra fields (`filters`, `can_be_disabled`) are ignored.
public enum ClientResource: Hashable, Sendable, Codable {
    case dns(DnsResource)
    case cidr(CidrResource)
    case internet(InternetResource)

    public var id: ResourceId {
        switch self {
        case .dns(let resource): resource.id
        case .cidr(let resource): resource.id
        case .internet(let resource): resource.id
        }
    }

    public var sites: [Site] {
        switch self {
        case .dns(let resource): resource.sites
        case .cidr(let resource): resource.sites
        case .internet(let resource): resource.sites
        }
    }

    /// A DNS resource: names matching `address` (glob: `*`, `**`, `?`) are resolved through a gateway.
    public struct DnsResource: Hashable, Sendable {
        public var id: ResourceId
        public var address: String
        public var name: String
        public var addressDescription: String?
        public var sites: [Site]
        public var ipStack: IpStack

        public init(id: ResourceId, address: String, name: String, addressDescription: String? = nil, sites: [Site],
                    ipStack: IpStack = .dual) {
            self.id = id
            self.address = address
            self.name = name
            self.addressDescription = addressDescription
            self.sites = sites
            self.ipStack = ipStack
        }
    }

    /// A CIDR resource: traffic to `address` goes through a gateway.
    public struct CidrResource: Hashable, Sendable {
        public var id: ResourceId
        public var address: IpNetwork
        public var name: String
        public var addressDescription: String?
        public var sites: [Site]

        public init(id: ResourceId, address: IpNetwork, name: String, addressDescription: String? = nil, sites: [Site]) {
            self.id = id
            self.address = address
            self.name = name
            self.addressDescription = addressDescription
            self.sites = sites
        }
    }

    /// The Internet resource: a default route through a gateway, when the user turns it on.
    public struct InternetResource: Hashable, Sendable {
        public var id: ResourceId
        public var name: String
        public var sites: [Site]

        public init(id: ResourceId, name: String = "Internet Resource", sites: [Site]) {
            self.id = id
            self.name = name
            self.sites = sites
        }
    }

    /// The types this client implements; others are left out (``UnsupportedResource``).
    static let types: Set<String> = ["dns", "cidr", "internet"]

    private enum CodingKeys: String, CodingKey {
        case id, type, address, name, addressDescription = "address_description", ipStack = "ip_stack"
        case gatewayGroups = "gateway_groups", sites
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        let id = try container.decode(ResourceId.self, forKey: .id)
        let sites = try container.decodeIfPresent([Site].self, forKey: .gatewayGroups)
            ?? container.decode([Site].self, forKey: .sites)
        switch type {
        case "dns":
            self = .dns(DnsResource(
                id: id, address: try container.decode(String.self, forKey: .address),
                name: try container.decode(String.self, forKey: .name),
                addressDescription: try container.decodeIfPresent(String.self, forKey: .addressDescription), sites: sites,
                ipStack: try container.decodeIfPresent(IpStack.self, forKey: .ipStack) ?? .dual))
        case "cidr":
            self = .cidr(CidrResource(
                id: id, address: try container.decode(IpNetwork.self, forKey: .address),
                name: try container.decode(String.self, forKey: .name),
                addressDescription: try container.decodeIfPresent(String.self, forKey: .addressDescription), sites: sites))
        case "internet":
            self = .internet(InternetResource(
                id: id, name: try container.decodeIfPresent(String.self, forKey: .name) ?? "Internet Resource", sites: sites))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown resource type '\(type)'")
        }
    }

    /// Encodes as the portal renders it: sites under `sites` or `gateway_groups` as the ``PortalView`` says,
    /// `ip_stack` only for DNS.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(sites, forKey: PortalView.of(encoder).sitesKey ? .sites : .gatewayGroups)
        switch self {
        case .dns(let resource):
            try container.encode("dns", forKey: .type)
            try container.encode(resource.address, forKey: .address)
            try container.encode(resource.name, forKey: .name)
            try container.encode(resource.addressDescription, forKey: .addressDescription)
            try container.encode(resource.ipStack, forKey: .ipStack)
        case .cidr(let resource):
            try container.encode("cidr", forKey: .type)
            try container.encode(resource.address, forKey: .address)
            try container.encode(resource.name, forKey: .name)
            try container.encode(resource.addressDescription, forKey: .addressDescription)
        case .internet(let resource):
            try container.encode("internet", forKey: .type)
            try container.encode(resource.name, forKey: .name)
        }
    }
}
