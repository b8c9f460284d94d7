import Ice
import PhoenixChannel
import SansIO

/// What the portal sends a gateway on topic `gateway` (spec §4, and §8 for v2's `create_authorization`). The
/// legacy `request_connection` and `allow_access` (clients before 1.4) are deliberately not handled: they
/// decode as `unknownEvent`.
public enum GatewayIngress: Hashable, Sendable, PhoenixPayload {
    case initialize(GatewayInit)
    /// `authorize_flow` (v1) or `create_authorization` (v2).
    case authorizeFlow(AuthorizeFlow)
    case iceCandidates(ClientCandidates)
    case invalidateIceCandidates(ClientCandidates)
    case relaysPresence(RelaysPresence)
    case resourceUpdated(GatewayResource)
    case rejectAccess(AccessKey)
    case accessAuthorizationExpiryUpdated(AccessExpiry)

    /// Decodes one push from its payload text; malformed candidates are left out and appended to `skipped`.
    public init(event: String, payload: String, skipped: inout [SkippedEntry]) throws(PortalMessageError) {
        self = try PortalJson.decode(Self.self, event: event, payload: payload, skipped: &skipped)
    }

    /// Decodes one push from the payload of a frame being decoded.
    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        func decode<T: Decodable>(_ type: T.Type) throws(PortalMessageError) -> T {
            try PortalJson.decode(type, event: event, from: decoder)
        }
        switch event {
        case "init": self = .initialize(try decode(GatewayInit.self))
        case "authorize_flow": self = .authorizeFlow(try decode(AuthorizeFlow.self))
        case "create_authorization":
            let flow = try decode(AuthorizeFlow.self)
            guard flow.flowLogsIngestToken != nil else { throw .malformed(event: event, reason: "missing 'flow_logs_ingest_token'") }
            self = .authorizeFlow(flow)
        case "ice_candidates": self = .iceCandidates(try decode(ClientCandidates.self))
        case "invalidate_ice_candidates": self = .invalidateIceCandidates(try decode(ClientCandidates.self))
        case "relays_presence": self = .relaysPresence(try decode(RelaysPresence.self))
        case "resource_updated": self = .resourceUpdated(try decode(GatewayResource.self))
        case "reject_access": self = .rejectAccess(try decode(AccessKey.self))
        case "access_authorization_expiry_updated": self = .accessAuthorizationExpiryUpdated(try decode(AccessExpiry.self))
        default: throw .unknownEvent(event)
        }
    }

    public init(event: String, payload: String) throws(PortalMessageError) {
        var skipped: [SkippedEntry] = []
        try self.init(event: event, payload: payload, skipped: &skipped)
    }

    /// The event's name as the v1 portal sends it.
    public var event: String { event(in: .v1) }

    /// The event's name on a socket of `view`'s generation.
    public func event(in view: PortalView) -> String {
        switch self {
        case .initialize: "init"
        case .authorizeFlow: view.api == .v2 ? "create_authorization" : "authorize_flow"
        case .iceCandidates: "ice_candidates"
        case .invalidateIceCandidates: "invalidate_ice_candidates"
        case .relaysPresence: "relays_presence"
        case .resourceUpdated: "resource_updated"
        case .rejectAccess: "reject_access"
        case .accessAuthorizationExpiryUpdated: "access_authorization_expiry_updated"
        }
    }

    /// The payload as compact JSON text with sorted keys.
    public var payload: String { payload(in: .v1) }

    public func payload(in view: PortalView) -> String {
        switch self {
        case .initialize(let message): PortalJson.encode(message, view: view)
        case .authorizeFlow(let flow): PortalJson.encode(flow, view: view)
        case .iceCandidates(let candidates), .invalidateIceCandidates(let candidates): PortalJson.encode(candidates, view: view)
        case .relaysPresence(let presence): PortalJson.encode(presence, view: view)
        case .resourceUpdated(let resource): PortalJson.encode(resource, view: view)
        case .rejectAccess(let key): PortalJson.encode(key, view: view)
        case .accessAuthorizationExpiryUpdated(let expiry): PortalJson.encode(expiry, view: view)
        }
    }
}

/// What a gateway sends the portal on topic `gateway` (spec §4.4, §4.7, §8).
public enum GatewayEgress: Hashable, Sendable, PhoenixPayload, PortalEgress {
    /// `flow_authorized` (v1) or `authorization_created` (v2); echoes the `ref` of the request unchanged.
    case flowAuthorized(ref: String)
    case broadcastIceCandidates(CandidatesForClients)
    case broadcastInvalidatedIceCandidates(CandidatesForClients)
    /// `no_relays` (v2): the tunnel has no relay; the portal answers with `relays_presence`.
    case noRelays
    /// `set_snownet_capabilities` (v2). Ours never claims ICE-less support; the portal's side decodes it.
    case setSnownetCapabilities(SnownetCapabilities)

    /// Decodes one gateway message from its payload text (the portal's side).
    public init(event: String, payload: String) throws(PortalMessageError) {
        var skipped: [SkippedEntry] = []
        self = try PortalJson.decode(Self.self, event: event, payload: payload, skipped: &skipped)
    }

    /// Decodes one gateway message of either generation from the payload of a frame being decoded (the portal
    /// checks the name against its socket with ``isSent(as:on:)``). An unknown event is answered `unknown_message`.
    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        func decode<T: Decodable>(_ type: T.Type) throws(PortalMessageError) -> T {
            try PortalJson.decode(type, event: event, from: decoder)
        }
        switch event {
        case "flow_authorized", "authorization_created": self = .flowAuthorized(ref: try decode(FlowAuthorized.self).ref)
        case "broadcast_ice_candidates": self = .broadcastIceCandidates(try decode(CandidatesForClients.self))
        case "broadcast_invalidated_ice_candidates": self = .broadcastInvalidatedIceCandidates(try decode(CandidatesForClients.self))
        case "no_relays": self = .noRelays
        case "set_snownet_capabilities": self = .setSnownetCapabilities(try decode(SnownetCapabilities.self))
        default: throw .unknownEvent(event)
        }
    }

    /// Whether a portal serving `api` accepts this message under the name `event`: a v1 socket maps
    /// `flow_authorized` to the new flow and answers `authorization_created` with `unknown_message`; a v2 socket
    /// knows only `authorization_created`.
    public static func isSent(as event: String, on api: PortalApi) -> Bool {
        switch event {
        case "flow_authorized": api == .v1
        case "authorization_created": api == .v2
        default: true
        }
    }

    public func frames(for api: PortalApi) -> [PortalFrame] {
        switch (self, api) {
        case (.flowAuthorized(let ref), .v1): [PortalFrame(event: "flow_authorized", payload: PortalJson.encode(FlowAuthorized(ref: ref)))]
        case (.flowAuthorized(let ref), .v2):
            [PortalFrame(event: "authorization_created", payload: PortalJson.encode(FlowAuthorized(ref: ref)))]
        case (.broadcastIceCandidates(let candidates), _):
            [PortalFrame(event: "broadcast_ice_candidates", payload: PortalJson.encode(candidates))]
        case (.broadcastInvalidatedIceCandidates(let candidates), _):
            [PortalFrame(event: "broadcast_invalidated_ice_candidates", payload: PortalJson.encode(candidates))]
        case (.noRelays, .v2): [PortalFrame(event: "no_relays", payload: "{}")]
        case (.setSnownetCapabilities(let capabilities), .v2):
            [PortalFrame(event: "set_snownet_capabilities", payload: PortalJson.encode(capabilities))]
        case (.noRelays, .v1), (.setSnownetCapabilities, .v1): []
        }
    }
}

struct FlowAuthorized: Codable {
    var ref: String
}

/// `init` for a gateway (spec §4.2). `config` is required though its values are ignored.
public struct GatewayInit: Hashable, Sendable, Codable {
    public var interface: GatewayInterface
    public var config: Config
    public var relays: [Relay]
    public var accountSlug: String?
    public var authorizations: [AccessExpiry]
    /// Required by Firezone's newest gateways; absent from older portals.
    public var flowLogs: FlowLogsConfig?

    public init(interface: GatewayInterface, config: Config = Config(), relays: [Relay] = [], accountSlug: String? = nil,
                authorizations: [AccessExpiry] = [], flowLogs: FlowLogsConfig? = nil) {
        self.interface = interface
        self.config = config
        self.relays = relays
        self.accountSlug = accountSlug
        self.authorizations = authorizations
        self.flowLogs = flowLogs
    }

    public struct Config: Hashable, Sendable, Codable {
        public var ipv4MasqueradeEnabled: Bool
        public var ipv6MasqueradeEnabled: Bool

        public init(ipv4MasqueradeEnabled: Bool = true, ipv6MasqueradeEnabled: Bool = true) {
            self.ipv4MasqueradeEnabled = ipv4MasqueradeEnabled
            self.ipv6MasqueradeEnabled = ipv6MasqueradeEnabled
        }

        private enum CodingKeys: String, CodingKey {
            case ipv4MasqueradeEnabled = "ipv4_masquerade_enabled", ipv6MasqueradeEnabled = "ipv6_masquerade_enabled"
        }
    }

    private enum CodingKeys: String, CodingKey {
        case interface, config, relays, accountSlug = "account_slug", authorizations, flowLogs = "flow_logs"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        interface = try container.decode(GatewayInterface.self, forKey: .interface)
        config = try container.decode(Config.self, forKey: .config)
        relays = try container.decodeIfPresent([Relay].self, forKey: .relays) ?? []
        accountSlug = try container.decodeIfPresent(String.self, forKey: .accountSlug)
        authorizations = try container.decodeIfPresent([AccessExpiry].self, forKey: .authorizations) ?? []
        flowLogs = try container.decodeIfPresent(FlowLogsConfig.self, forKey: .flowLogs)
    }
}

/// `authorize_flow` (spec §4.3) or `create_authorization` (§8), with the same payload.
public struct AuthorizeFlow: Hashable, Sendable, Codable {
    /// Opaque portal token, echoed in `flow_authorized`.
    public var ref: String
    public var resource: GatewayResource
    public var client: FlowClient
    /// The client's credentials: remote for the gateway.
    public var clientIceCredentials: IceCredentials
    /// The gateway's own (local) credentials.
    public var gatewayIceCredentials: IceCredentials
    public var subject: Subject?
    /// Unix seconds; `nil` never expires.
    public var expiresAt: Int64?
    /// ICE-less mode; never set for a gateway that does not claim the capability, as ours does not.
    public var useIceless: Bool
    /// The credential for uploading this flow's logs.
    public var flowLogsIngestToken: IngestToken?

    public init(ref: String, resource: GatewayResource, client: FlowClient, clientIceCredentials: IceCredentials,
                gatewayIceCredentials: IceCredentials, subject: Subject? = nil, expiresAt: Int64? = nil,
                useIceless: Bool = false, flowLogsIngestToken: IngestToken? = nil) {
        self.ref = ref
        self.resource = resource
        self.client = client
        self.clientIceCredentials = clientIceCredentials
        self.gatewayIceCredentials = gatewayIceCredentials
        self.subject = subject
        self.expiresAt = expiresAt
        self.useIceless = useIceless
        self.flowLogsIngestToken = flowLogsIngestToken
    }

    private enum CodingKeys: String, CodingKey {
        case ref, resource, client, clientIceCredentials = "client_ice_credentials"
        case gatewayIceCredentials = "gateway_ice_credentials", subject, expiresAt = "expires_at"
        case useIceless = "use_iceless", flowLogsIngestToken = "flow_logs_ingest_token"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ref = try container.decode(String.self, forKey: .ref)
        resource = try container.decode(GatewayResource.self, forKey: .resource)
        client = try container.decode(FlowClient.self, forKey: .client)
        clientIceCredentials = try container.decode(IceCredentials.self, forKey: .clientIceCredentials)
        gatewayIceCredentials = try container.decode(IceCredentials.self, forKey: .gatewayIceCredentials)
        subject = try container.decodeIfPresent(Subject.self, forKey: .subject)
        expiresAt = try container.decodeIfPresent(Int64.self, forKey: .expiresAt)
        useIceless = try container.decodeIfPresent(Bool.self, forKey: .useIceless) ?? false
        flowLogsIngestToken = try container.decodeIfPresent(IngestToken.self, forKey: .flowLogsIngestToken)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ref, forKey: .ref)
        try container.encode(resource, forKey: .resource)
        try container.encode(client, forKey: .client)
        try container.encode(clientIceCredentials, forKey: .clientIceCredentials)
        try container.encode(gatewayIceCredentials, forKey: .gatewayIceCredentials)
        try container.encodeIfPresent(subject, forKey: .subject)
        try container.encode(expiresAt, forKey: .expiresAt)
        if useIceless || PortalView.of(encoder).api == .v2 { try container.encode(useIceless, forKey: .useIceless) }
        try container.encodeIfPresent(flowLogsIngestToken, forKey: .flowLogsIngestToken)
    }
}

/// The client of an `authorize_flow`.
public struct FlowClient: Hashable, Sendable, Codable {
    public var id: ClientId
    public var publicKey: PublicKey
    public var presharedKey: PresharedKey
    public var ipv4: IPv4Address
    public var ipv6: IPv6Address
    public var version: String?
    public var deviceOsName: String?
    public var deviceOsVersion: String?
    public var deviceSerial: String?
    public var deviceUuid: String?
    public var identifierForVendor: String?
    public var firebaseInstallationId: String?

    public init(id: ClientId, publicKey: PublicKey, presharedKey: PresharedKey, ipv4: IPv4Address, ipv6: IPv6Address,
                version: String? = nil, deviceOsName: String? = nil, deviceOsVersion: String? = nil) {
        self.id = id
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.version = version
        self.deviceOsName = deviceOsName
        self.deviceOsVersion = deviceOsVersion
    }

    private enum CodingKeys: String, CodingKey {
        case id, publicKey = "public_key", presharedKey = "preshared_key", ipv4, ipv6, version
        case deviceOsName = "device_os_name", deviceOsVersion = "device_os_version", deviceSerial = "device_serial"
        case deviceUuid = "device_uuid", identifierForVendor = "identifier_for_vendor"
        case firebaseInstallationId = "firebase_installation_id"
    }
}

/// Who a flow is for; only used in flow logs. All fields optional (spec §4.3).
public struct Subject: Hashable, Sendable, Codable {
    public var authProviderId: String?
    public var actorName: String?
    public var actorId: String?
    public var actorEmail: String?

    public init(authProviderId: String? = nil, actorName: String? = nil, actorId: String? = nil, actorEmail: String? = nil) {
        self.authProviderId = authProviderId
        self.actorName = actorName
        self.actorId = actorId
        self.actorEmail = actorEmail
    }

    private enum CodingKeys: String, CodingKey {
        case authProviderId = "auth_provider_id", actorName = "actor_name", actorId = "actor_id", actorEmail = "actor_email"
    }
}

/// One client's access to one resource: `reject_access` (spec §4.8).
public struct AccessKey: Hashable, Sendable, Codable {
    public var clientId: ClientId
    public var resourceId: ResourceId

    public init(clientId: ClientId, resourceId: ResourceId) {
        self.clientId = clientId
        self.resourceId = resourceId
    }

    private enum CodingKeys: String, CodingKey { case clientId = "client_id", resourceId = "resource_id" }
}

/// An access and when it ends: `init.authorizations` entries and `access_authorization_expiry_updated` (§4.9).
public struct AccessExpiry: Hashable, Sendable, Codable {
    public var clientId: ClientId
    public var resourceId: ResourceId
    /// Unix seconds.
    public var expiresAt: Int64

    public init(clientId: ClientId, resourceId: ResourceId, expiresAt: Int64) {
        self.clientId = clientId
        self.resourceId = resourceId
        self.expiresAt = expiresAt
    }

    private enum CodingKeys: String, CodingKey {
        case clientId = "client_id", resourceId = "resource_id", expiresAt = "expires_at"
    }
}
