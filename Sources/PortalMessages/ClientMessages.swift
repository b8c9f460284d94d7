import Ice
import PhoenixChannel
import SansIO

/// What the portal sends a client on topic `client` (spec §3).
public enum ClientIngress: Hashable, Sendable, PhoenixPayload {
    case initialize(ClientInit)
    case configChanged(ClientInterface)
    case resourceCreatedOrUpdated(ClientResource)
    case resourceDeleted(ResourceId)
    case relaysPresence(RelaysPresence)
    case iceCandidates(GatewayCandidates)
    case invalidateIceCandidates(GatewayCandidates)
    case flowCreated(FlowCreated)
    case flowCreationFailed(FlowCreationFailed)

    /// Decodes one push from its payload text. Malformed resources in `init` and malformed candidates are left out and appended to
    /// `skipped`; anything else malformed refuses the message.
    public init(event: String, payload: String, skipped: inout [SkippedEntry]) throws(PortalMessageError) {
        self = try PortalJson.decode(Self.self, event: event, payload: payload, skipped: &skipped)
    }

    /// Decodes one push from the payload of a frame being decoded.
    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        func decode<T: Decodable>(_ type: T.Type) throws(PortalMessageError) -> T {
            try PortalJson.decode(type, event: event, from: decoder)
        }
        switch event {
        case "init": self = .initialize(try decode(ClientInit.self))
        case "config_changed": self = .configChanged(try decode(ConfigChanged.self).interface)
        case "resource_created_or_updated": self = .resourceCreatedOrUpdated(try decode(ClientResource.self))
        case "resource_deleted": self = .resourceDeleted(try decode(ResourceId.self))
        case "relays_presence": self = .relaysPresence(try decode(RelaysPresence.self))
        case "ice_candidates": self = .iceCandidates(try decode(GatewayCandidates.self))
        case "invalidate_ice_candidates": self = .invalidateIceCandidates(try decode(GatewayCandidates.self))
        case "flow_created": self = .flowCreated(try decode(FlowCreated.self))
        case "flow_creation_failed": self = .flowCreationFailed(try decode(FlowCreationFailed.self))
        default: throw .unknownEvent(event)
        }
    }

    /// Decodes one push, discarding the record of skipped entries.
    public init(event: String, payload: String) throws(PortalMessageError) {
        var skipped: [SkippedEntry] = []
        try self.init(event: event, payload: payload, skipped: &skipped)
    }

    public var event: String {
        switch self {
        case .initialize: "init"
        case .configChanged: "config_changed"
        case .resourceCreatedOrUpdated: "resource_created_or_updated"
        case .resourceDeleted: "resource_deleted"
        case .relaysPresence: "relays_presence"
        case .iceCandidates: "ice_candidates"
        case .invalidateIceCandidates: "invalidate_ice_candidates"
        case .flowCreated: "flow_created"
        case .flowCreationFailed: "flow_creation_failed"
        }
    }

    /// The payload as compact JSON text with sorted keys.
    public var payload: String {
        switch self {
        case .initialize(let message): PortalJson.encode(message)
        case .configChanged(let interface): PortalJson.encode(ConfigChanged(interface: interface))
        case .resourceCreatedOrUpdated(let resource): PortalJson.encode(resource)
        case .resourceDeleted(let id): PortalJson.encode(id)
        case .relaysPresence(let presence): PortalJson.encode(presence)
        case .iceCandidates(let candidates), .invalidateIceCandidates(let candidates): PortalJson.encode(candidates)
        case .flowCreated(let flow): PortalJson.encode(flow)
        case .flowCreationFailed(let failure): PortalJson.encode(failure)
        }
    }
}

/// What a client sends the portal on topic `client` (spec §3.8, §3.11).
public enum ClientEgress: Hashable, Sendable, PhoenixPayload {
    case createFlow(CreateFlow)
    case broadcastIceCandidates(CandidatesForGateways)
    case broadcastInvalidatedIceCandidates(CandidatesForGateways)

    /// Decodes one client message from its payload text (the portal's side).
    public init(event: String, payload: String) throws(PortalMessageError) {
        var skipped: [SkippedEntry] = []
        self = try PortalJson.decode(Self.self, event: event, payload: payload, skipped: &skipped)
    }

    /// Decodes one client message from the payload of a frame being decoded. An unknown event is answered
    /// `unknown_message`.
    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        func decode<T: Decodable>(_ type: T.Type) throws(PortalMessageError) -> T {
            try PortalJson.decode(type, event: event, from: decoder)
        }
        switch event {
        case "create_flow": self = .createFlow(try decode(CreateFlow.self))
        case "broadcast_ice_candidates": self = .broadcastIceCandidates(try decode(CandidatesForGateways.self))
        case "broadcast_invalidated_ice_candidates": self = .broadcastInvalidatedIceCandidates(try decode(CandidatesForGateways.self))
        default: throw .unknownEvent(event)
        }
    }

    public var event: String {
        switch self {
        case .createFlow: "create_flow"
        case .broadcastIceCandidates: "broadcast_ice_candidates"
        case .broadcastInvalidatedIceCandidates: "broadcast_invalidated_ice_candidates"
        }
    }

    public var payload: String {
        switch self {
        case .createFlow(let flow): PortalJson.encode(flow)
        case .broadcastIceCandidates(let candidates), .broadcastInvalidatedIceCandidates(let candidates):
            PortalJson.encode(candidates)
        }
    }
}

/// `init` for a client (spec §3.2).
public struct ClientInit: Hashable, Sendable, Codable {
    public var interface: ClientInterface
    public var resources: [ClientResource]
    public var relays: [Relay]

    public init(interface: ClientInterface, resources: [ClientResource] = [], relays: [Relay] = []) {
        self.interface = interface
        self.resources = resources
        self.relays = relays
    }

    private enum CodingKeys: String, CodingKey { case interface, resources, relays }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        interface = try container.decode(ClientInterface.self, forKey: .interface)
        resources = try container.decodeSkippingMalformed(forKey: .resources) {
            try ClientResource(from: $0)
        } ?? []
        relays = try container.decodeIfPresent([Relay].self, forKey: .relays) ?? []
    }
}

struct ConfigChanged: Codable {
    var interface: ClientInterface
}

/// `create_flow` (spec §3.8): both keys are required by the portal.
public struct CreateFlow: Hashable, Sendable, Codable {
    public var resourceId: ResourceId
    /// Gateways this client connected to during the session, sorted.
    public var connectedGatewayIds: [GatewayId]

    public init(resourceId: ResourceId, connectedGatewayIds: [GatewayId]) {
        self.resourceId = resourceId
        self.connectedGatewayIds = connectedGatewayIds.sorted()
    }

    private enum CodingKeys: String, CodingKey {
        case resourceId = "resource_id", connectedGatewayIds = "connected_gateway_ids"
    }
}

/// `flow_created` (spec §3.9): every field is required.
public struct FlowCreated: Hashable, Sendable, Codable {
    public var resourceId: ResourceId
    public var gatewayId: GatewayId
    public var gatewayPublicKey: PublicKey
    public var gatewayIpv4: IPv4Address
    public var gatewayIpv6: IPv6Address
    public var siteId: SiteId
    public var presharedKey: PresharedKey
    /// The client's own (local) ICE credentials.
    public var clientIceCredentials: IceCredentials
    /// The gateway's (remote) ICE credentials.
    public var gatewayIceCredentials: IceCredentials

    public init(resourceId: ResourceId, gatewayId: GatewayId, gatewayPublicKey: PublicKey, gatewayIpv4: IPv4Address,
                gatewayIpv6: IPv6Address, siteId: SiteId, presharedKey: PresharedKey,
                clientIceCredentials: IceCredentials, gatewayIceCredentials: IceCredentials) {
        self.resourceId = resourceId
        self.gatewayId = gatewayId
        self.gatewayPublicKey = gatewayPublicKey
        self.gatewayIpv4 = gatewayIpv4
        self.gatewayIpv6 = gatewayIpv6
        self.siteId = siteId
        self.presharedKey = presharedKey
        self.clientIceCredentials = clientIceCredentials
        self.gatewayIceCredentials = gatewayIceCredentials
    }

    private enum CodingKeys: String, CodingKey {
        case resourceId = "resource_id", gatewayId = "gateway_id", gatewayPublicKey = "gateway_public_key"
        case gatewayIpv4 = "gateway_ipv4", gatewayIpv6 = "gateway_ipv6", siteId = "gateway_group_id"
        case siteAlias = "site_id", presharedKey = "preshared_key"
        case clientIceCredentials = "client_ice_credentials", gatewayIceCredentials = "gateway_ice_credentials"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        resourceId = try container.decode(ResourceId.self, forKey: .resourceId)
        gatewayId = try container.decode(GatewayId.self, forKey: .gatewayId)
        gatewayPublicKey = try container.decode(PublicKey.self, forKey: .gatewayPublicKey)
        gatewayIpv4 = try container.decode(IPv4Address.self, forKey: .gatewayIpv4)
        gatewayIpv6 = try container.decode(IPv6Address.self, forKey: .gatewayIpv6)
        siteId = try container.decodeIfPresent(SiteId.self, forKey: .siteId) ?? container.decode(SiteId.self, forKey: .siteAlias)
        presharedKey = try container.decode(PresharedKey.self, forKey: .presharedKey)
        clientIceCredentials = try container.decode(IceCredentials.self, forKey: .clientIceCredentials)
        gatewayIceCredentials = try container.decode(IceCredentials.self, forKey: .gatewayIceCredentials)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(resourceId, forKey: .resourceId)
        try container.encode(gatewayId, forKey: .gatewayId)
        try container.encode(gatewayPublicKey, forKey: .gatewayPublicKey)
        try container.encode(gatewayIpv4, forKey: .gatewayIpv4)
        try container.encode(gatewayIpv6, forKey: .gatewayIpv6)
        try container.encode(siteId, forKey: .siteId)
        try container.encode(presharedKey, forKey: .presharedKey)
        try container.encode(clientIceCredentials, forKey: .clientIceCredentials)
        try container.encode(gatewayIceCredentials, forKey: .gatewayIceCredentials)
    }
}

/// `flow_creation_failed` (spec §3.10).
public struct FlowCreationFailed: Hashable, Sendable, Codable {
    public var resourceId: ResourceId
    public var reason: Reason
    public var violatedProperties: [String]

    public init(resourceId: ResourceId, reason: Reason, violatedProperties: [String] = []) {
        self.resourceId = resourceId
        self.reason = reason
        self.violatedProperties = violatedProperties
    }

    /// Why the portal could not create the flow; spellings it may add later decode as `.unknown`.
    public enum Reason: Hashable, Sendable, Codable {
        /// The resource is not authorized.
        case notFound
        /// No compatible gateway is online.
        case offline
        /// Policy conditions are violated (see `violatedProperties`).
        case forbidden
        case unknown(String)

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            self = switch text {
            case "not_found": .notFound
            case "offline": .offline
            case "forbidden": .forbidden
            default: .unknown(text)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(text)
        }

        public var text: String {
            switch self {
            case .notFound: "not_found"
            case .offline: "offline"
            case .forbidden: "forbidden"
            case .unknown(let text): text
            }
        }
    }

    private enum CodingKeys: String, CodingKey {
        case resourceId = "resource_id", reason, violatedProperties = "violated_properties"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        resourceId = try container.decode(ResourceId.self, forKey: .resourceId)
        reason = try container.decode(Reason.self, forKey: .reason)
        violatedProperties = try container.decodeIfPresent([String].self, forKey: .violatedProperties) ?? []
    }
}
