import FoundationEssentials
import Logging
import PhoenixChannel
import PortalMessages
import SansIO

/// The portal's brain (spec §6): who is connected, which flows are pending or authorized, and what each
/// client and gateway is sent on join, on their messages, and when the configuration changes.
public actor PortalState {
    public internal(set) var config: PortalConfig
    let store: DeviceStore
    let logger: Logger
    /// Unix seconds; injected so tests can move time.
    let wallClock: @Sendable () -> Int64
    var clients: [ClientId: ClientSession] = [:]
    var gateways: [GatewayId: GatewaySession] = [:]
    var pendingFlows: [String: PendingFlow] = [:]
    var authorizations: [AccessKey: Authorization] = [:]
    /// Frames that did not decode, and messages whose payload did not.
    public private(set) var malformedCount = 0

    /// When every TURN credential expires: 2038-01-01, Firezone's constant for gateways since the baseline's
    /// "90 days from now" (`@relay_credentials_expire_at` in `portal_api/gateway/channel/shared.ex`). Clients get
    /// their session's expiry there, and the development portal's tokens never expire, so they get it too.
    /// The credentials must not change from one join to the next: coturn ties an allocation to its username,
    /// and a node that reconnects (same socket, new username) could neither reuse nor delete its allocation.
    static let relayCredentialsExpireAt: Int64 = 2_145_916_800

    public init(config: PortalConfig, store: DeviceStore, logger: Logger,
                wallClock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) {
        self.config = config
        self.store = store
        self.logger = logger
        self.wallClock = wallClock
    }

    /// What to answer a message with.
    public enum Reply: Sendable, Equatable {
        case none
        case ok(String)
        case error(reason: String)
    }

    public func countMalformedFrame() {
        malformedCount += 1
    }

    /// The connected clients' and gateways' ids, for tests and logs.
    public var connected: (clients: [ClientId], gateways: [GatewayId]) {
        (clients.keys.sorted(), gateways.keys.sorted())
    }

    // MARK: Joining and leaving

    /// A client joined its topic: remember it (replacing an older connection of the same device) and send `init`.
    public func clientJoined(_ request: ConnectRequest, device: DeviceRecord, outbox: Outbox) {
        guard let actor = config.actor(forClientToken: request.token) else { return }
        let id = ClientId(device.id.uuid)
        if let old = clients[id], old.outbox !== outbox { old.outbox.finish() }
        var session = ClientSession(id: id, token: request.token, actor: actor.name, device: device, publicKey: request.publicKey,
                                    userAgent: request.userAgent, outbox: outbox)
        let resources = config.resources(for: actor.name).map { $0.clientView(sites: config.sites) }
        session.sentResources = Dictionary(uniqueKeysWithValues: resources.map { ($0.id, $0) })
        clients[id] = session
        let message = ClientInit(interface: clientInterface(device), resources: resources,
                                 relays: relays(for: request.publicKey, expiresAt: Self.relayCredentialsExpireAt))
        push(.initialize(message), to: session)
        logger.info("Client joined", metadata: ["client": "\(id)", "actor": "\(actor.name)", "name": "\(request.name)"])
    }

    /// A gateway joined its topic: remember it and send `init` with its authorizations.
    public func gatewayJoined(_ request: ConnectRequest, device: DeviceRecord, outbox: Outbox) {
        guard let site = config.site(forGatewayToken: request.token) else { return }
        let id = GatewayId(device.id.uuid)
        if let old = gateways[id], old.outbox !== outbox { old.outbox.finish() }
        let session = GatewaySession(id: id, token: request.token, site: site.id, device: device, publicKey: request.publicKey,
                                     outbox: outbox)
        gateways[id] = session
        let granted = authorizations.filter { $0.value.gateway == id }
            .map { AccessExpiry(clientId: $0.key.clientId, resourceId: $0.key.resourceId, expiresAt: $0.value.expiresAt) }
            .sorted { ($0.clientId, $0.resourceId) < ($1.clientId, $1.resourceId) }
        let message = GatewayInit(interface: GatewayInterface(ipv4: device.ipv4, ipv6: device.ipv6),
                                  relays: relays(for: request.publicKey, expiresAt: Self.relayCredentialsExpireAt),
                                  accountSlug: config.accountSlug, authorizations: granted)
        session.outbox.push(topic: "gateway", event: "init", payload: GatewayIngress.initialize(message).payload)
        logger.info("Gateway joined", metadata: ["gateway": "\(id)", "site": "\(site.name)", "name": "\(request.name)"])
    }

    /// A connection ended; forget its session unless a newer connection replaced it.
    public func left(outbox: Outbox) {
        clients = clients.filter { $0.value.outbox !== outbox }
        gateways = gateways.filter { $0.value.outbox !== outbox }
    }

    // MARK: Messages

    /// A message from a client on topic `client` (spec §3.8, §3.11).
    public func handleClientMessage(from outbox: Outbox, event: String, payload: String) -> Reply {
        guard let client = clients.values.first(where: { $0.outbox === outbox }) else { return .error(reason: "unmatched topic") }
        let message: ClientEgress
        do {
            message = try ClientEgress(event: event, payload: payload)
        } catch {
            if case .malformed = error { malformedCount += 1 }
            logger.debug("Unknown client message", metadata: ["error": "\(error)"])
            return .error(reason: "unknown_message")
        }
        switch message {
        case .createFlow(let request):
            createFlow(request, for: client)
        case .broadcastIceCandidates(let message):
            relay(message, from: client, invalidated: false)
        case .broadcastInvalidatedIceCandidates(let message):
            relay(message, from: client, invalidated: true)
        }
        return .none
    }

    /// A message from a gateway on topic `gateway` (spec §4.4, §4.7).
    public func handleGatewayMessage(from outbox: Outbox, event: String, payload: String) -> Reply {
        guard let gateway = gateways.values.first(where: { $0.outbox === outbox }) else { return .error(reason: "unmatched topic") }
        let message: GatewayEgress
        do {
            message = try GatewayEgress(event: event, payload: payload)
        } catch {
            if case .malformed = error { malformedCount += 1 }
            logger.debug("Unknown gateway message", metadata: ["error": "\(error)"])
            return .error(reason: "unknown_message")
        }
        switch message {
        case .flowAuthorized(let ref):
            return flowAuthorized(ref: ref, by: gateway)
        case .broadcastIceCandidates(let message):
            relay(message, from: gateway, invalidated: false)
        case .broadcastInvalidatedIceCandidates(let message):
            relay(message, from: gateway, invalidated: true)
        }
        return .none
    }

    /// A client's candidates go to the gateways it lists as `ice_candidates` / `invalidate_ice_candidates`.
    private func relay(_ message: CandidatesForGateways, from client: ClientSession, invalidated: Bool) {
        let candidates = ClientCandidates(peer: client.id, candidates: message.candidates)
        for gateway in message.peers.compactMap({ gateways[$0] }) {
            push(invalidated ? .invalidateIceCandidates(candidates) : .iceCandidates(candidates), to: gateway)
        }
    }

    /// A gateway's candidates go to the clients it lists.
    private func relay(_ message: CandidatesForClients, from gateway: GatewaySession, invalidated: Bool) {
        let candidates = GatewayCandidates(peer: gateway.id, candidates: message.candidates)
        for client in message.peers.compactMap({ clients[$0] }) {
            push(invalidated ? .invalidateIceCandidates(candidates) : .iceCandidates(candidates), to: client)
        }
    }

    /// `create_flow` → `authorize_flow` to a connected gateway of the resource's site, or `flow_creation_failed`.
    private func createFlow(_ request: CreateFlow, for client: ClientSession) {
        guard let resource = config.resources(for: client.actor).first(where: { $0.id == request.resourceId }) else {
            push(.flowCreationFailed(FlowCreationFailed(resourceId: request.resourceId, reason: .notFound)), to: client)
            return
        }
        let candidates = gateways.values.filter { resource.sites.contains($0.site) }.sorted { $0.id < $1.id }
        guard let gateway = candidates.first(where: { request.connectedGatewayIds.contains($0.id) }) ?? candidates.randomElement() else {
            push(.flowCreationFailed(FlowCreationFailed(resourceId: request.resourceId, reason: .offline)), to: client)
            return
        }
        let ice = Credentials.ice(clientId: client.id, clientKey: client.publicKey, gatewayId: gateway.id, gatewayKey: gateway.publicKey)
        let psk = Credentials.presharedKey(clientId: client.id, clientKey: client.publicKey, clientPskBase: client.device.pskBase,
                                           gatewayId: gateway.id, gatewayKey: gateway.publicKey, gatewayPskBase: gateway.device.pskBase)
        let expiresAt = wallClock() + seconds(config.accessLifetime)
        let ref = (0..<16).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        pendingFlows[ref] = PendingFlow(client: client.id, actor: client.actor, resource: resource.id, gateway: gateway.id, presharedKey: psk, ice: ice,
                                        expiresAt: expiresAt)
        let actor = config.actors.first { $0.name == client.actor }
        let flowClient = FlowClient(id: client.id, publicKey: client.publicKey, presharedKey: psk, ipv4: client.device.ipv4,
                                    ipv6: client.device.ipv6, version: client.userAgent.version,
                                    deviceOsName: client.userAgent.osName, deviceOsVersion: client.userAgent.osVersion)
        let authorize = AuthorizeFlow(ref: ref, resource: resource.gatewayView, client: flowClient, clientIceCredentials: ice.client,
                                      gatewayIceCredentials: ice.gateway,
                                      subject: Subject(actorName: client.actor, actorEmail: actor?.email), expiresAt: expiresAt)
        push(.authorizeFlow(authorize), to: gateway)
    }

    /// `flow_authorized` → reply ok to the gateway, `flow_created` to the client.
    private func flowAuthorized(ref: String, by gateway: GatewaySession) -> Reply {
        guard let flow = pendingFlows[ref], flow.gateway == gateway.id else { return .error(reason: "invalid_ref") }
        pendingFlows[ref] = nil
        authorizations[AccessKey(clientId: flow.client, resourceId: flow.resource)] = Authorization(
            actor: flow.actor, gateway: gateway.id, expiresAt: flow.expiresAt)
        if let client = clients[flow.client] {
            let created = FlowCreated(resourceId: flow.resource, gatewayId: gateway.id, gatewayPublicKey: gateway.publicKey,
                                      gatewayIpv4: gateway.device.ipv4, gatewayIpv6: gateway.device.ipv6, siteId: gateway.site,
                                      presharedKey: flow.presharedKey, clientIceCredentials: flow.ice.client,
                                      gatewayIceCredentials: flow.ice.gateway)
            push(.flowCreated(created), to: client)
        }
        return .ok("{}")
    }

    // MARK: Expiry

    /// Drops authorizations whose time has come (the gateway enforces the same expiry itself).
    public func expireAccess() {
        let now = wallClock()
        authorizations = authorizations.filter { $0.value.expiresAt > now }
    }

    // MARK: Helpers

    func push(_ message: ClientIngress, to client: ClientSession) {
        client.outbox.push(topic: "client", event: message.event, payload: message.payload)
    }

    func push(_ message: GatewayIngress, to gateway: GatewaySession) {
        gateway.outbox.push(topic: "gateway", event: message.event, payload: message.payload)
    }

    func clientInterface(_ device: DeviceRecord) -> ClientInterface {
        ClientInterface(ipv4: device.ipv4, ipv6: device.ipv6, upstreamDo53: config.upstreamDns.map(Do53Upstream.init),
                        upstreamDns: config.upstreamDns.map { LegacyDnsUpstream(address: SocketAddress(ip: $0, port: 53)) })
    }

    /// Every configured relay, once per address, with credentials for `publicKey`.
    func relays(for publicKey: PublicKey, expiresAt: Int64, in config: PortalConfig? = nil) -> [Relay] {
        (config ?? self.config).relays.flatMap { relay in
            relay.addresses.map { address in
                let credentials = Credentials.turn(secret: relay.secret, publicKey: publicKey, expiresAt: expiresAt)
                return Relay.turn(TurnRelay(id: relay.id, address: address, username: credentials.username,
                                            password: credentials.password, expiresAt: expiresAt))
            }
        }
    }

    func seconds(_ duration: Duration) -> Int64 { duration.components.seconds }
}
