import Ice
import PhoenixChannel
import SansIO

/// What the portal sends a client on topic `client` (spec §3, and §8 for the v2 names). Both generations'
/// event names decode to the same cases: `flow_created` and `authorization_created`, `ice_candidates` and
/// `gateway_ice_candidates`, and so on.
public enum ClientIngress: Hashable, Sendable, PhoenixPayload {
    case initialize(ClientInit)
    case configChanged(ClientInterface)
    case resourceCreatedOrUpdated(ClientResource)
    case resourceDeleted(ResourceId)
    case relaysPresence(RelaysPresence)
    case iceCandidates(GatewayCandidates)
    case invalidateIceCandidates(GatewayCandidates)
    /// `flow_created` (v1) or `authorization_created` (v2).
    case flowCreated(FlowCreated)
    /// `flow_creation_failed` (v1) or `authorization_creation_failed` (v2).
    case flowCreationFailed(FlowCreationFailed)
    /// A push for something this client does not implement (client-to-client access, device pools, a resource
    /// of such a type): Firezone's portal sends them to clients of the version we announce; they are ignored.
    case unsupported(UnsupportedPush)

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
        case "resource_created_or_updated":
            switch try decode(ResourceOrUnsupported.self) {
            case .resource(let resource): self = .resourceCreatedOrUpdated(resource)
            case .unsupported(let type, let id): self = .unsupported(UnsupportedPush(event: event, resourceType: type, resourceId: id))
            }
        case "resource_deleted": self = .resourceDeleted(try decode(ResourceId.self))
        case "relays_presence": self = .relaysPresence(try decode(RelaysPresence.self))
        case "ice_candidates", "gateway_ice_candidates": self = .iceCandidates(try decode(GatewayCandidates.self))
        case "invalidate_ice_candidates", "invalidate_gateway_ice_candidates":
            self = .invalidateIceCandidates(try decode(GatewayCandidates.self))
        case "flow_created": self = .flowCreated(try decode(FlowCreated.self))
        case "authorization_created":
            let flow = try decode(FlowCreated.self)
            guard flow.flowLogsIngestToken != nil else { throw .malformed(event: event, reason: "missing 'flow_logs_ingest_token'") }
            self = .flowCreated(flow)
        case "flow_creation_failed", "authorization_creation_failed": self = .flowCreationFailed(try decode(FlowCreationFailed.self))
        case _ where UnsupportedPush.clientEvents.contains(event): self = .unsupported(UnsupportedPush(event: event))
        default: throw .unknownEvent(event)
        }
    }

    /// Decodes one push, discarding the record of skipped entries.
    public init(event: String, payload: String) throws(PortalMessageError) {
        var skipped: [SkippedEntry] = []
        try self.init(event: event, payload: payload, skipped: &skipped)
    }

    /// The event's name as the v1 portal sends it.
    public var event: String { event(in: .v1) }

    /// The event's name as the portal sends it on a socket of `view`'s generation.
    public func event(in view: PortalView) -> String {
        switch self {
        case .initialize: "init"
        case .configChanged: "config_changed"
        case .resourceCreatedOrUpdated: "resource_created_or_updated"
        case .resourceDeleted: "resource_deleted"
        case .relaysPresence: "relays_presence"
        case .iceCandidates: "ice_candidates"
        case .invalidateIceCandidates: "invalidate_ice_candidates"
        case .flowCreated: view.api == .v2 ? "authorization_created" : "flow_created"
        case .flowCreationFailed: view.api == .v2 ? "authorization_creation_failed" : "flow_creation_failed"
        case .unsupported(let push): push.event
        }
    }

    /// The payload as compact JSON text with sorted keys, as the v1 portal renders it.
    public var payload: String { payload(in: .v1) }

    /// The payload as the portal renders it for a connection of `view`.
    public func payload(in view: PortalView) -> String {
        switch self {
        case .initialize(let message): PortalJson.encode(message, view: view)
        case .configChanged(let interface): PortalJson.encode(ConfigChanged(interface: interface), view: view)
        case .resourceCreatedOrUpdated(let resource): PortalJson.encode(resource, view: view)
        case .resourceDeleted(let id): PortalJson.encode(id, view: view)
        case .relaysPresence(let presence): PortalJson.encode(presence, view: view)
        case .iceCandidates(let candidates), .invalidateIceCandidates(let candidates): PortalJson.encode(candidates, view: view)
        case .flowCreated(let flow): PortalJson.encode(flow, view: view)
        case .flowCreationFailed(let failure): PortalJson.encode(failure, view: view)
        case .unsupported(let push):
            // A resource of an unsupported type keeps its type and id; other pushes are not rendered by us.
            "{" + [push.resourceId.map { #""id":\#(JsonText.string("\($0)"))"# }, push.resourceType.map { #""type":\#(JsonText.string($0))"# }]
                .compactMap { $0 }.joined(separator: ",") + "}"
        }
    }
}

/// What a client sends the portal on topic `client` (spec §3.8, §3.11, §8).
public enum ClientEgress: Hashable, Sendable, PhoenixPayload, PortalEgress {
    /// `create_flow` (v1) or `request_authorization` (v2).
    case createFlow(CreateFlow)
    /// `broadcast_ice_candidates` (v1), or one `new_gateway_ice_candidates` per gateway (v2).
    case broadcastIceCandidates(CandidatesForGateways)
    /// `broadcast_invalidated_ice_candidates` (v1), or one `invalidate_gateway_ice_candidates` per gateway (v2).
    case broadcastInvalidatedIceCandidates(CandidatesForGateways)
    /// `no_relays` (v2): the tunnel has no relay; the portal answers with `relays_presence`.
    case noRelays
    /// `set_snownet_capabilities` (v2). Ours never claims ICE-less support; the portal's side decodes it.
    case setSnownetCapabilities(SnownetCapabilities)

    /// Decodes one client message from its payload text (the portal's side).
    public init(event: String, payload: String) throws(PortalMessageError) {
        var skipped: [SkippedEntry] = []
        self = try PortalJson.decode(Self.self, event: event, payload: payload, skipped: &skipped)
    }

    /// Decodes one client message of either generation from the payload of a frame being decoded (the portal's
    /// side; it checks the name against its socket's generation with ``isSent(as:on:)``). An unknown event is
    /// answered `unknown_message`.
    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        func decode<T: Decodable>(_ type: T.Type) throws(PortalMessageError) -> T {
            try PortalJson.decode(type, event: event, from: decoder)
        }
        switch event {
        case "create_flow", "request_authorization": self = .createFlow(try decode(CreateFlow.self))
        case "broadcast_ice_candidates": self = .broadcastIceCandidates(try decode(CandidatesForGateways.self))
        case "broadcast_invalidated_ice_candidates": self = .broadcastInvalidatedIceCandidates(try decode(CandidatesForGateways.self))
        case "new_gateway_ice_candidates":
            self = .broadcastIceCandidates(CandidatesForGateways(try decode(GatewayCandidates.self)))
        case "invalidate_gateway_ice_candidates":
            self = .broadcastInvalidatedIceCandidates(CandidatesForGateways(try decode(GatewayCandidates.self)))
        case "no_relays": self = .noRelays
        case "set_snownet_capabilities": self = .setSnownetCapabilities(try decode(SnownetCapabilities.self))
        default: throw .unknownEvent(event)
        }
    }

    /// Whether a portal serving `api` accepts this message under the name `event`: the newest portal maps v1's
    /// `create_flow` to the new flow but answers `request_authorization` on a v1 socket, and `create_flow` on a
    /// v2 socket, with `unknown_message`.
    public static func isSent(as event: String, on api: PortalApi) -> Bool {
        switch event {
        case "create_flow": api == .v1
        case "request_authorization": api == .v2
        default: true
        }
    }

    public func frames(for api: PortalApi) -> [PortalFrame] {
        switch (self, api) {
        case (.createFlow(let flow), .v1): [PortalFrame(event: "create_flow", payload: PortalJson.encode(flow))]
        case (.createFlow(let flow), .v2): [PortalFrame(event: "request_authorization", payload: PortalJson.encode(flow))]
        case (.broadcastIceCandidates(let candidates), .v1):
            [PortalFrame(event: "broadcast_ice_candidates", payload: PortalJson.encode(candidates))]
        case (.broadcastIceCandidates(let candidates), .v2):
            candidates.perPeer.map { PortalFrame(event: "new_gateway_ice_candidates", payload: PortalJson.encode($0)) }
        case (.broadcastInvalidatedIceCandidates(let candidates), .v1):
            [PortalFrame(event: "broadcast_invalidated_ice_candidates", payload: PortalJson.encode(candidates))]
        case (.broadcastInvalidatedIceCandidates(let candidates), .v2):
            candidates.perPeer.map { PortalFrame(event: "invalidate_gateway_ice_candidates", payload: PortalJson.encode($0)) }
        case (.noRelays, .v2): [PortalFrame(event: "no_relays", payload: "{}")]
        case (.setSnownetCapabilities(let capabilities), .v2):
            [PortalFrame(event: "set_snownet_capabilities", payload: PortalJson.encode(capabilities))]
        case (.noRelays, .v1), (.setSnownetCapabilities, .v1): []
        }
    }
}

/// `init` for a client (spec §3.2, §8).
public struct ClientInit: Hashable, Sendable, Codable {
    public var interface: ClientInterface
    public var resources: [ClientResource]
    public var relays: [Relay]
    /// Inbound client-to-client authorizations (v2); this client serves none, so they are only carried.
    public var authorizations: [AccessExpiry]
    /// Required by Firezone's newest clients; absent from older portals.
    public var flowLogs: FlowLogsConfig?
    /// Resources of types this client does not implement (device pools, types added later), left out one by one.
    public var unsupportedResources: [UnsupportedResource]

    public init(interface: ClientInterface, resources: [ClientResource] = [], relays: [Relay] = [],
                authorizations: [AccessExpiry] = [], flowLogs: FlowLogsConfig? = nil, unsupportedResources: [UnsupportedResource] = []) {
        self.interface = interface
        self.resources = resources
        self.relays = relays
        self.authorizations = authorizations
        self.flowLogs = flowLogs
        self.unsupportedResources = unsupportedResources
    }

    private enum CodingKeys: String, CodingKey { case interface, resources, relays, authorizations, flowLogs = "flow_logs" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        interface = try container.decode(ClientInterface.self, forKey: .interface)
        let entries = try container.decodeSkippingMalformed(forKey: .resources) { try ResourceOrUnsupported(from: $0) } ?? []
        resources = entries.compactMap { if case .resource(let resource) = $0 { resource } else { nil } }
        unsupportedResources = entries.compactMap { entry in
            guard case .unsupported(let type, let id) = entry else { return nil }
            return UnsupportedResource(type: type, id: id)
        }
        relays = try container.decodeIfPresent([Relay].self, forKey: .relays) ?? []
        authorizations = try container.decodeIfPresent([AccessExpiry].self, forKey: .authorizations) ?? []
        flowLogs = try container.decodeIfPresent(FlowLogsConfig.self, forKey: .flowLogs)
    }

    /// Resources of unsupported types are written back as their type and id, so what decoded re-encodes equal.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(interface, forKey: .interface)
        var list = container.nestedUnkeyedContainer(forKey: .resources)
        for resource in resources { try list.encode(resource) }
        for unsupported in unsupportedResources { try list.encode(unsupported) }
        try container.encode(relays, forKey: .relays)
        try container.encode(authorizations, forKey: .authorizations)
        try container.encodeIfPresent(flowLogs, forKey: .flowLogs)
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

/// `flow_created` (spec §3.9) or `authorization_created` (§8): every field is required but the two v2 added.
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
    /// ICE-less mode; never set for a client that does not claim the capability, as ours does not.
    public var useIceless: Bool
    /// The credential for uploading this flow's logs.
    public var flowLogsIngestToken: IngestToken?

    public init(resourceId: ResourceId, gatewayId: GatewayId, gatewayPublicKey: PublicKey, gatewayIpv4: IPv4Address,
                gatewayIpv6: IPv6Address, siteId: SiteId, presharedKey: PresharedKey,
                clientIceCredentials: IceCredentials, gatewayIceCredentials: IceCredentials, useIceless: Bool = false,
                flowLogsIngestToken: IngestToken? = nil) {
        self.resourceId = resourceId
        self.gatewayId = gatewayId
        self.gatewayPublicKey = gatewayPublicKey
        self.gatewayIpv4 = gatewayIpv4
        self.gatewayIpv6 = gatewayIpv6
        self.siteId = siteId
        self.presharedKey = presharedKey
        self.clientIceCredentials = clientIceCredentials
        self.gatewayIceCredentials = gatewayIceCredentials
        self.useIceless = useIceless
        self.flowLogsIngestToken = flowLogsIngestToken
    }

    private enum CodingKeys: String, CodingKey {
        case resourceId = "resource_id", gatewayId = "gateway_id", gatewayPublicKey = "gateway_public_key"
        case gatewayIpv4 = "gateway_ipv4", gatewayIpv6 = "gateway_ipv6", siteId = "gateway_group_id"
        case siteAlias = "site_id", presharedKey = "preshared_key"
        case clientIceCredentials = "client_ice_credentials", gatewayIceCredentials = "gateway_ice_credentials"
        case useIceless = "use_iceless", flowLogsIngestToken = "flow_logs_ingest_token"
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
        useIceless = try container.decodeIfPresent(Bool.self, forKey: .useIceless) ?? false
        flowLogsIngestToken = try container.decodeIfPresent(IngestToken.self, forKey: .flowLogsIngestToken)
    }

    /// The site under `site_id` for clients that read `sites`, `gateway_group_id` otherwise.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(resourceId, forKey: .resourceId)
        try container.encode(gatewayId, forKey: .gatewayId)
        try container.encode(gatewayPublicKey, forKey: .gatewayPublicKey)
        try container.encode(gatewayIpv4, forKey: .gatewayIpv4)
        try container.encode(gatewayIpv6, forKey: .gatewayIpv6)
        try container.encode(siteId, forKey: PortalView.of(encoder).sitesKey ? .siteAlias : .siteId)
        try container.encode(presharedKey, forKey: .presharedKey)
        try container.encode(clientIceCredentials, forKey: .clientIceCredentials)
        try container.encode(gatewayIceCredentials, forKey: .gatewayIceCredentials)
        if useIceless || PortalView.of(encoder).api == .v2 { try container.encode(useIceless, forKey: .useIceless) }
        try container.encodeIfPresent(flowLogsIngestToken, forKey: .flowLogsIngestToken)
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
        /// No gateway of the resource's site is online.
        case offline
        /// The site's gateways are online, but none within the client's version window (§8).
        case versionMismatch
        /// Policy conditions are violated (see `violatedProperties`).
        case forbidden
        /// The resource or its site is disabled.
        case disabled
        case unknown(String)

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            self = switch text {
            case "not_found": .notFound
            case "offline": .offline
            case "version_mismatch": .versionMismatch
            case "forbidden": .forbidden
            case "disabled": .disabled
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
            case .versionMismatch: "version_mismatch"
            case .forbidden: "forbidden"
            case .disabled: "disabled"
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
