import PortalMessages
import SansIO

/// The portal's central rule for flows (spec `portal-phoenix.md` §6, §8), without IO: a client's `create_flow`
/// becomes `authorize_flow` to a connected gateway of the resource's site whose version may serve the client's
/// (``VersionGates``), the gateway's `flow_authorized` becomes `flow_created` for the client and an
/// authorisation the broker keeps until it expires, and ICE candidates pass between the peers each side names.
/// The v2 names of these messages are the same cases. Written once for the development portal, the pcap
/// replay and the simulations.
///
/// Sans-IO like the tunnel: join and leave the peers, hand in their messages with the time, and deliver what
/// ``pollOutput()`` returns. What a client may reach and the secrets of a pair come from a ``FlowPolicy``.
///
/// ```swift
/// var broker = FlowBroker(random: SplitMix64(seed: 1))
/// broker.gatewayJoined(FlowBroker.Gateway(id: gid, publicKey: key, site: site, ipv4: v4, ipv6: v6))
/// broker.clientJoined(FlowBroker.Client(id: cid, actor: "alice", publicKey: ckey, ipv4: cv4, ipv6: cv6))
/// broker.handle(.createFlow(request), from: cid, policy: policy, unixTime: now)
/// while let output = broker.pollOutput() { deliver(output) }    // authorize_flow to gid
/// ```
public struct FlowBroker: Sendable {
    /// A connected client, with what `authorize_flow` tells the gateway about it.
    public struct Client: Hashable, Sendable {
        public var id: ClientId
        /// Whose policies apply: the portal's actor.
        public var actor: String
        public var publicKey: PublicKey
        public var ipv4: IPv4Address
        public var ipv6: IPv6Address
        public var version: String?
        public var deviceOsName: String?
        public var deviceOsVersion: String?
        public var subject: Subject?

        public init(id: ClientId, actor: String, publicKey: PublicKey, ipv4: IPv4Address, ipv6: IPv6Address, version: String? = nil,
                    deviceOsName: String? = nil, deviceOsVersion: String? = nil, subject: Subject? = nil) {
            self.id = id
            self.actor = actor
            self.publicKey = publicKey
            self.ipv4 = ipv4
            self.ipv6 = ipv6
            self.version = version
            self.deviceOsName = deviceOsName
            self.deviceOsVersion = deviceOsVersion
            self.subject = subject
        }
    }

    /// A connected gateway and its site.
    public struct Gateway: Hashable, Sendable {
        public var id: GatewayId
        public var publicKey: PublicKey
        public var site: SiteId
        public var ipv4: IPv4Address
        public var ipv6: IPv6Address
        /// The version its User-Agent announced; `nil` serves no client that announced one.
        public var version: String?

        public init(id: GatewayId, publicKey: PublicKey, site: SiteId, ipv4: IPv4Address, ipv6: IPv6Address, version: String? = nil) {
            self.id = id
            self.publicKey = publicKey
            self.site = site
            self.ipv4 = ipv4
            self.ipv6 = ipv6
            self.version = version
        }
    }

    /// A (client, resource) pair the gateway was told to allow.
    public struct Authorization: Hashable, Sendable {
        public var actor: String
        public var gateway: GatewayId
        /// Unix seconds; `nil` never expires.
        public var expiresAt: Int64?
    }

    /// A message for one connected peer.
    public enum Output: Hashable, Sendable {
        case toClient(ClientId, ClientIngress)
        case toGateway(GatewayId, GatewayIngress)
    }

    /// The answer to a gateway's message that wants one (`flow_authorized`).
    public enum Reply: Hashable, Sendable {
        case none
        case ok
        case error(reason: String)
    }

    public private(set) var clients: [ClientId: Client] = [:]
    public private(set) var gateways: [GatewayId: Gateway] = [:]
    public private(set) var authorizations: [AccessKey: Authorization] = [:]
    private var pendingFlows: [String: PendingFlow] = [:]
    private var outputs: [Output] = []
    private var random: SplitMix64

    public init(random: SplitMix64) {
        self.random = random
    }

    // MARK: Peers

    /// A client joined (or rejoined: its entry is replaced).
    public mutating func clientJoined(_ client: Client) {
        clients[client.id] = client
    }

    /// A gateway joined (or rejoined).
    public mutating func gatewayJoined(_ gateway: Gateway) {
        gateways[gateway.id] = gateway
    }

    /// A client left; its authorisations stay until they expire, as the gateway keeps them.
    public mutating func clientLeft(_ id: ClientId) {
        clients[id] = nil
    }

    public mutating func gatewayLeft(_ id: GatewayId) {
        gateways[id] = nil
    }

    /// What a gateway's `init` lists: its unexpired authorisations, sorted.
    public func authorizations(on gateway: GatewayId) -> [AccessExpiry] {
        authorizations.compactMap { key, authorization in
            guard authorization.gateway == gateway else { return nil }
            return AccessExpiry(clientId: key.clientId, resourceId: key.resourceId, expiresAt: authorization.expiresAt ?? .max)
        }.sorted { ($0.clientId, $0.resourceId) < ($1.clientId, $1.resourceId) }
    }

    // MARK: Messages

    /// A client's message (spec §3.8, §3.11).
    public mutating func handle(_ message: ClientEgress, from id: ClientId, policy: some FlowPolicy, unixTime: Int64) {
        guard let client = clients[id] else { return }
        switch message {
        case .createFlow(let request):
            createFlow(request, for: client, policy: policy, unixTime: unixTime)
        case .broadcastIceCandidates(let message):
            let candidates = ClientCandidates(peer: id, candidates: message.candidates)
            for gateway in message.peers where gateways[gateway] != nil { outputs.append(.toGateway(gateway, .iceCandidates(candidates))) }
        case .broadcastInvalidatedIceCandidates(let message):
            let candidates = ClientCandidates(peer: id, candidates: message.candidates)
            for gateway in message.peers where gateways[gateway] != nil {
                outputs.append(.toGateway(gateway, .invalidateIceCandidates(candidates)))
            }
        case .noRelays, .setSnownetCapabilities:
            break  // the portal's business (relays), and ICE-less, which the broker never uses
        }
    }

    /// A gateway's message (spec §4.4, §4.7); `flow_authorized` gets a reply.
    public mutating func handle(_ message: GatewayEgress, from id: GatewayId) -> Reply {
        guard gateways[id] != nil else { return .none }
        switch message {
        case .flowAuthorized(let ref):
            return flowAuthorized(ref: ref, by: id)
        case .broadcastIceCandidates(let message):
            let candidates = GatewayCandidates(peer: id, candidates: message.candidates)
            for client in message.peers where clients[client] != nil { outputs.append(.toClient(client, .iceCandidates(candidates))) }
        case .broadcastInvalidatedIceCandidates(let message):
            let candidates = GatewayCandidates(peer: id, candidates: message.candidates)
            for client in message.peers where clients[client] != nil {
                outputs.append(.toClient(client, .invalidateIceCandidates(candidates)))
            }
        case .noRelays, .setSnownetCapabilities:
            break
        }
        return .none
    }

    /// Forgets authorisations whose time has come (the gateway enforces the same expiry itself).
    public mutating func expireAuthorizations(unixTime: Int64) {
        authorizations = authorizations.filter { $0.value.expiresAt.map { $0 > unixTime } ?? true }
    }

    /// Withdraws an authorisation: `reject_access` to its gateway.
    public mutating func revoke(_ key: AccessKey) {
        guard let authorization = authorizations.removeValue(forKey: key) else { return }
        if gateways[authorization.gateway] != nil { outputs.append(.toGateway(authorization.gateway, .rejectAccess(key))) }
    }

    public mutating func pollOutput() -> Output? {
        outputs.isEmpty ? nil : outputs.removeFirst()
    }

    // MARK: Details

    private struct PendingFlow: Sendable {
        var client: ClientId
        var actor: String
        var resource: ResourceId
        var gateway: GatewayId
        var secrets: FlowSecrets
        var expiresAt: Int64?
    }

    /// `create_flow` → `authorize_flow` to a connected gateway of the resource's sites that may serve the
    /// client (one the client is connected to first), or `flow_creation_failed`: `not_found`, `offline` when the
    /// sites have no gateway online, `version_mismatch` when none of them may serve this client.
    private mutating func createFlow(_ request: CreateFlow, for client: Client, policy: some FlowPolicy, unixTime: Int64) {
        func fail(_ reason: FlowCreationFailed.Reason) {
            outputs.append(.toClient(client.id, .flowCreationFailed(FlowCreationFailed(resourceId: request.resourceId, reason: reason))))
        }
        guard let resource = policy.resource(request.resourceId, for: client) else { return fail(.notFound) }
        let online = gateways.values.filter { resource.sites.contains($0.site) }
        let candidates = online.filter { Self.may($0, serve: client, resource.gatewayView) }.sorted { $0.id < $1.id }
        guard let gateway = candidates.first(where: { request.connectedGatewayIds.contains($0.id) })
            ?? candidates.randomElement(using: &random)
        else { return fail(online.isEmpty ? .offline : .versionMismatch) }
        let expiresAt = policy.accessLifetime.map { unixTime + $0.components.seconds }
        let secrets = policy.secrets(client: client, gateway: gateway, resource: request.resourceId, unixTime: unixTime,
                                     expiresAt: expiresAt)
        let ref = (0..<16).map { _ in String(UInt8.random(in: 0...255, using: &random), radix: 16) }.joined()
        pendingFlows[ref] = PendingFlow(client: client.id, actor: client.actor, resource: request.resourceId, gateway: gateway.id,
                                        secrets: secrets, expiresAt: expiresAt)
        let flowClient = FlowClient(id: client.id, publicKey: client.publicKey, presharedKey: secrets.presharedKey, ipv4: client.ipv4,
                                    ipv6: client.ipv6, version: client.version, deviceOsName: client.deviceOsName,
                                    deviceOsVersion: client.deviceOsVersion)
        let gatewayView = gateway.version.flatMap(VersionGates.Version.init).flatMap { VersionGates.adapt(resource.gatewayView, for: $0) }
            ?? resource.gatewayView
        let authorize = AuthorizeFlow(ref: ref, resource: gatewayView, client: flowClient, clientIceCredentials: secrets.client,
                                      gatewayIceCredentials: secrets.gateway, subject: client.subject, expiresAt: expiresAt,
                                      flowLogsIngestToken: secrets.ingestTokens?.responder)
        outputs.append(.toGateway(gateway.id, .authorizeFlow(authorize)))
    }

    /// `flow_authorized` → `flow_created` to the client; the pair is authorised from now on.
    private mutating func flowAuthorized(ref: String, by gatewayId: GatewayId) -> Reply {
        guard let flow = pendingFlows[ref], flow.gateway == gatewayId, let gateway = gateways[gatewayId] else {
            return .error(reason: "invalid_ref")
        }
        pendingFlows[ref] = nil
        authorizations[AccessKey(clientId: flow.client, resourceId: flow.resource)] = Authorization(
            actor: flow.actor, gateway: gatewayId, expiresAt: flow.expiresAt)
        if clients[flow.client] != nil {
            let created = FlowCreated(resourceId: flow.resource, gatewayId: gatewayId, gatewayPublicKey: gateway.publicKey,
                                      gatewayIpv4: gateway.ipv4, gatewayIpv6: gateway.ipv6, siteId: gateway.site,
                                      presharedKey: flow.secrets.presharedKey, clientIceCredentials: flow.secrets.client,
                                      gatewayIceCredentials: flow.secrets.gateway,
                                      flowLogsIngestToken: flow.secrets.ingestTokens?.initiator)
            outputs.append(.toClient(flow.client, .flowCreated(created)))
        }
        return .ok
    }

    /// The portal's gateway filter: a client that announced no version is served by any gateway; one whose
    /// version does not parse, by none; otherwise the gateway's version must fall in the client's window.
    private static func may(_ gateway: Gateway, serve client: Client, _ resource: GatewayResource) -> Bool {
        guard let clientText = client.version else { return true }
        guard let clientVersion = VersionGates.Version(clientText),
              let gatewayVersion = gateway.version.flatMap(VersionGates.Version.init)
        else { return false }
        return VersionGates.gateway(gatewayVersion, canServe: clientVersion, resource: resource)
    }
}

/// What the broker asks of whoever runs it: which resources a client may reach, the secrets of a
/// client–gateway pair, and how long an authorisation lasts.
public protocol FlowPolicy {
    /// The resource `id` as `client` may reach it: its sites and the gateway's view; `nil` when it may not.
    func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource?
    /// The preshared key, ICE credentials and ingest tokens of a flow between `client` and `gateway` to `resource`,
    /// authorised at `unixTime` until `expiresAt`.
    func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway, resource: ResourceId, unixTime: Int64,
                 expiresAt: Int64?) -> FlowSecrets
    /// How long an authorisation lasts; `nil` for ever.
    var accessLifetime: Duration? { get }
}

/// A resource a client may reach, as the broker needs it.
public struct BrokeredResource: Hashable, Sendable {
    public var sites: [SiteId]
    public var gatewayView: GatewayResource

    public init(sites: [SiteId], gatewayView: GatewayResource) {
        self.sites = sites
        self.gatewayView = gatewayView
    }
}

/// The secrets of one flow: the pair's preshared key, both sides' ICE credentials, and the flow-log ingest
/// tokens a portal of today mints for each side (none in the replay and the simulations).
public struct FlowSecrets: Hashable, Sendable {
    public var presharedKey: PresharedKey
    public var client: IceCredentials
    public var gateway: IceCredentials
    public var ingestTokens: IngestTokens?

    public init(presharedKey: PresharedKey, client: IceCredentials, gateway: IceCredentials, ingestTokens: IngestTokens? = nil) {
        self.presharedKey = presharedKey
        self.client = client
        self.gateway = gateway
        self.ingestTokens = ingestTokens
    }

    /// The initiator's (the client's) and the responder's (the gateway's) token.
    public struct IngestTokens: Hashable, Sendable {
        public var initiator: IngestToken
        public var responder: IngestToken

        public init(initiator: IngestToken, responder: IngestToken) {
            self.initiator = initiator
            self.responder = responder
        }
    }
}
