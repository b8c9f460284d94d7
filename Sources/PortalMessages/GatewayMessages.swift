import Ice
import PhoenixChannel
import SansIO

/// What the portal sends a gateway on topic `gateway` (spec §4). The legacy `request_connection` and
/// `allow_access` (clients before 1.4) are deliberately not handled: they decode as `unknownEvent`.
public enum GatewayIngress: Hashable, Sendable, PhoenixPayload {
    case initialize(GatewayInit)
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

    public var event: String {
        switch self {
        case .initialize: "init"
        case .authorizeFlow: "authorize_flow"
        case .iceCandidates: "ice_candidates"
        case .invalidateIceCandidates: "invalidate_ice_candidates"
        case .relaysPresence: "relays_presence"
        case .resourceUpdated: "resource_updated"
        case .rejectAccess: "reject_access"
        case .accessAuthorizationExpiryUpdated: "access_authorization_expiry_updated"
        }
    }

    public var payload: String {
        switch self {
        case .initialize(let message): PortalJson.encode(message)
        case .authorizeFlow(let flow): PortalJson.encode(flow)
        case .iceCandidates(let candidates), .invalidateIceCandidates(let candidates): PortalJson.encode(candidates)
        case .relaysPresence(let presence): PortalJson.encode(presence)
        case .resourceUpdated(let resource): PortalJson.encode(resource)
        case .rejectAccess(let key): PortalJson.encode(key)
        case .accessAuthorizationExpiryUpdated(let expiry): PortalJson.encode(expiry)
        }
    }
}

/// What a gateway sends the portal on topic `gateway` (spec §4.4, §4.7).
public enum GatewayEgress: Hashable, Sendable, PhoenixPayload {
    /// Echoes the `ref` of `authorize_flow` unchanged.
    case flowAuthorized(ref: String)
    case broadcastIceCandidates(CandidatesForClients)
    case broadcastInvalidatedIceCandidates(CandidatesForClients)

    /// Decodes one gateway message from its payload text (the portal's side).
    public init(event: String, payload: String) throws(PortalMessageError) {
        var skipped: [SkippedEntry] = []
        self = try PortalJson.decode(Self.self, event: event, payload: payload, skipped: &skipped)
    }

    /// Decodes one gateway message from the payload of a frame being decoded. An unknown event is answered
    /// `unknown_message`.
    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        func decode<T: Decodable>(_ type: T.Type) throws(PortalMessageError) -> T {
            try PortalJson.decode(type, event: event, from: decoder)
        }
        switch event {
        case "flow_authorized": self = .flowAuthorized(ref: try decode(FlowAuthorized.self).ref)
        case "broadcast_ice_candidates": self = .broadcastIceCandidates(try decode(CandidatesForClients.self))
        case "broadcast_invalidated_ice_candidates": self = .broadcastInvalidatedIceCandidates(try decode(CandidatesForClients.self))
        default: throw .unknownEvent(event)
        }
    }

    public var event: String {
        switch self {
        case .flowAuthorized: "flow_authorized"
        case .broadcastIceCandidates: "broadcast_ice_candidates"
        case .broadcastInvalidatedIceCandidates: "broadcast_invalidated_ice_candidates"
        }
    }

    public var payload: String {
        switch self {
        case .flowAuthorized(let ref): PortalJson.encode(FlowAuthorized(ref: ref))
        case .broadcastIceCandidates(let candidates), .broadcastInvalidatedIceCandidates(let candidates):
            PortalJson.encode(candidates)
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

    public init(interface: GatewayInterface, config: Config = Config(), relays: [Relay] = [], accountSlug: String? = nil,
                authorizations: [AccessExpiry] = []) {
        self.interface = interface
        self.config = config
        self.relays = relays
        self.accountSlug = accountSlug
        self.authorizations = authorizations
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
        case interface, config, relays, accountSlug = "account_slug", authorizations
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        interface = try container.decode(GatewayInterface.self, forKey: .interface)
        config = try container.decode(Config.self, forKey: .config)
        relays = try container.decodeIfPresent([Relay].self, forKey: .relays) ?? []
        accountSlug = try container.decodeIfPresent(String.self, forKey: .accountSlug)
        authorizations = try container.decodeIfPresent([AccessExpiry].self, forKey: .authorizations) ?? []
    }
}

/// `authorize_flow` (spec §4.3).
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

    public init(ref: String, resource: GatewayResource, client: FlowClient, clientIceCredentials: IceCredentials,
                gatewayIceCredentials: IceCredentials, subject: Subject? = nil, expiresAt: Int64? = nil) {
        self.ref = ref
        self.resource = resource
        self.client = client
        self.clientIceCredentials = clientIceCredentials
        self.gatewayIceCredentials = gatewayIceCredentials
        self.subject = subject
        self.expiresAt = expiresAt
    }

    private enum CodingKeys: String, CodingKey {
        case ref, resource, client, clientIceCredentials = "client_ice_credentials"
        case gatewayIceCredentials = "gateway_ice_credentials", subject, expiresAt = "expires_at"
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
