import FlowBroker
import Crypto
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
    /// Relays connected to the portal, by the id their secret gives them.
    var joinedRelays: [RelayId: RelaySession] = [:]
    /// Relays whose leave is held back (``relayLeaveDebounce``) in case they reconnect.
    var leavingRelays: [RelayId: LeavingRelay] = [:]
    /// How long a relay's leave is held back before clients and gateways hear of it (Firezone: 3 s).
    let relayLeaveDebounce: Duration
    var relayLeaveGeneration: UInt64 = 0
    /// Flows, candidates and authorisations: the rule every portal follows.
    var broker = FlowBroker(random: SplitMix64(seed: UInt64.random(in: 0...UInt64.max)))
    /// Frames that did not decode, and messages whose payload did not.
    public private(set) var malformedCount = 0

    /// When every TURN credential expires: 2038-01-01, Firezone's constant for gateways
    /// (`@relay_credentials_expire_at` in `portal_api/gateway/channel/shared.ex`). Clients get their session's
    /// expiry there, and the development portal's tokens never expire, so they get it too.
    /// The credentials must not change from one join to the next: coturn ties an allocation to its username,
    /// and a node that reconnects (same socket, new username) could neither reuse nor delete its allocation.
    static let relayCredentialsExpireAt: Int64 = 2_145_916_800
    /// `init.flow_logs`: uploads off (an interval of 0), as this portal has no ingest API.
    static let flowLogs = FlowLogsConfig(apiUrl: "https://flow-logs.invalid", uploadIntervalSecs: 0, uploadBatchSize: 1000)
    /// Signs the flow-log ingest tokens; a new one every run.
    let ingestKey = SymmetricKey(size: .bits256)

    public init(config: PortalConfig, store: DeviceStore, logger: Logger,
                wallClock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
                relayLeaveDebounce: Duration = .seconds(3)) {
        self.config = config
        self.relayLeaveDebounce = relayLeaveDebounce
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

    /// The connected clients', gateways' and relays' ids, for tests and logs.
    public var connected: (clients: [ClientId], gateways: [GatewayId], relays: [RelayId]) {
        (clients.keys.sorted(), gateways.keys.sorted(), joinedRelays.keys.sorted())
    }

    // MARK: Joining and leaving

    /// A client joined its topic on a socket of `api`: remember it (replacing an older connection of the same
    /// device) and send `init`, with the resources and keys its version is shown.
    public func clientJoined(_ request: ConnectRequest, device: DeviceRecord, api: PortalApi, outbox: Outbox) {
        guard let actor = config.actor(forClientToken: request.token) else { return }
        let id = ClientId(device.id.uuid)
        if let old = clients[id], old.outbox !== outbox { old.outbox.finish() }
        let readsSites = VersionGates.Version(request.userAgent.version).map {
            VersionGates.readsSites(component: request.userAgent.component, version: $0)
        } ?? false
        var session = ClientSession(id: id, token: request.token, actor: actor.name, device: device, publicKey: request.publicKey,
                                    userAgent: request.userAgent, outbox: outbox, view: PortalView(api: api, sitesKey: readsSites))
        let resources = session.resources(in: config)
        session.sentResources = Dictionary(uniqueKeysWithValues: resources.map { ($0.id, $0) })
        clients[id] = session
        broker.clientJoined(FlowBroker.Client(
            id: id, actor: actor.name, publicKey: request.publicKey, ipv4: device.ipv4, ipv6: device.ipv6,
            version: request.userAgent.version, deviceOsName: request.userAgent.osName, deviceOsVersion: request.userAgent.osVersion,
            subject: Subject(actorName: actor.name, actorEmail: actor.email)))
        let message = ClientInit(interface: clientInterface(device), resources: resources,
                                 relays: relays(for: request.publicKey, expiresAt: Self.relayCredentialsExpireAt), flowLogs: Self.flowLogs)
        push(.initialize(message), to: session)
        logger.info("Client joined", metadata: [
            "client": "\(id)", "actor": "\(actor.name)", "name": "\(request.name)", "api": "\(api)",
            "version": "\(request.userAgent.component)/\(request.userAgent.version)",
        ])
    }

    /// A gateway joined its topic on a socket of `api`: remember it and send `init` with its authorizations.
    public func gatewayJoined(_ request: ConnectRequest, device: DeviceRecord, api: PortalApi, outbox: Outbox) {
        guard let site = config.site(forGatewayToken: request.token) else { return }
        let id = GatewayId(device.id.uuid)
        if let old = gateways[id], old.outbox !== outbox { old.outbox.finish() }
        let session = GatewaySession(id: id, token: request.token, site: site.id, device: device, publicKey: request.publicKey,
                                     outbox: outbox, view: PortalView(api: api, sitesKey: false))
        gateways[id] = session
        broker.gatewayJoined(FlowBroker.Gateway(id: id, publicKey: request.publicKey, site: site.id, ipv4: device.ipv4, ipv6: device.ipv6,
                                                version: request.userAgent.version))
        let granted = broker.authorizations(on: id)
        let message = GatewayInit(interface: GatewayInterface(ipv4: device.ipv4, ipv6: device.ipv6),
                                  relays: relays(for: request.publicKey, expiresAt: Self.relayCredentialsExpireAt),
                                  accountSlug: config.accountSlug, authorizations: granted, flowLogs: Self.flowLogs)
        push(.initialize(message), to: session)
        logger.info("Gateway joined", metadata: [
            "gateway": "\(id)", "site": "\(site.name)", "name": "\(request.name)", "api": "\(api)",
            "version": "\(request.userAgent.component)/\(request.userAgent.version)",
        ])
    }

    /// A connection ended; forget its session unless a newer connection replaced it.
    public func left(outbox: Outbox) {
        for client in clients.values where client.outbox === outbox { forgetClient(client.id) }
        for gateway in gateways.values where gateway.outbox === outbox { forgetGateway(gateway.id) }
        for relay in joinedRelays.values where relay.outbox === outbox { relayLeft(relay) }
    }

    func forgetClient(_ id: ClientId) {
        clients[id] = nil
        broker.clientLeft(id)
    }

    func forgetGateway(_ id: GatewayId) {
        gateways[id] = nil
        broker.gatewayLeft(id)
    }

    // MARK: Messages

    /// A message from a client on topic `client` (spec §3.8, §3.11), or why it did not decode.
    public func handleClientMessage(from outbox: Outbox, message: Result<ClientEgress, PhoenixPayloadError>) -> Reply {
        guard let client = clients.values.first(where: { $0.outbox === outbox }) else { return .error(reason: "unmatched topic") }
        guard case .success(let message) = message else { return refuse(message) }
        if message == .noRelays {
            push(.relaysPresence(RelaysPresence(disconnectedIds: [], connected: relays(for: client.publicKey,
                                                                                      expiresAt: Self.relayCredentialsExpireAt))), to: client)
            return .none
        }
        broker.handle(message, from: client.id, policy: policy, unixTime: wallClock())
        deliverBrokerOutputs()
        return .none
    }

    /// A message from a gateway on topic `gateway` (spec §4.4, §4.7), or why it did not decode.
    public func handleGatewayMessage(from outbox: Outbox, message: Result<GatewayEgress, PhoenixPayloadError>) -> Reply {
        guard let gateway = gateways.values.first(where: { $0.outbox === outbox }) else { return .error(reason: "unmatched topic") }
        guard case .success(let message) = message else { return refuse(message) }
        if message == .noRelays {
            push(.relaysPresence(RelaysPresence(disconnectedIds: [], connected: relays(for: gateway.publicKey,
                                                                                      expiresAt: Self.relayCredentialsExpireAt))), to: gateway)
            return .none
        }
        let reply = broker.handle(message, from: gateway.id)
        deliverBrokerOutputs()
        switch reply {
        case .none: return .none
        case .ok: return .ok("{}")
        case .error(let reason): return .error(reason: reason)
        }
    }

    /// A message that did not decode: `unknown_message`, and counted when its payload was malformed.
    private func refuse<Message>(_ failure: Result<Message, PhoenixPayloadError>) -> Reply {
        guard case .failure(let error) = failure else { return .none }
        if case .malformed? = error.underlying as? PortalMessageError { malformedCount += 1 }
        logger.debug("Unknown message", metadata: ["error": "\(error)"])
        return .error(reason: "unknown_message")
    }

    // MARK: Expiry

    /// Drops authorizations whose time has come (the gateway enforces the same expiry itself).
    public func expireAccess() {
        broker.expireAuthorizations(unixTime: wallClock())
    }

    // MARK: Helpers

    /// The configuration's policies, as the broker asks for them.
    var policy: PortalPolicy { PortalPolicy(config: config, clients: clients, gateways: gateways, ingestKey: ingestKey) }

    /// Pushes what the broker has for the connected peers.
    func deliverBrokerOutputs() {
        while let output = broker.pollOutput() {
            switch output {
            case let .toClient(id, message): clients[id].map { push(message, to: $0) }
            case let .toGateway(id, message): gateways[id].map { push(message, to: $0) }
            }
        }
    }

    func push(_ message: ClientIngress, to client: ClientSession) {
        client.outbox.push(topic: "client", event: message.event(in: client.view), payload: message.payload(in: client.view))
    }

    func push(_ message: GatewayIngress, to gateway: GatewaySession) {
        gateway.outbox.push(topic: "gateway", event: message.event(in: gateway.view), payload: message.payload(in: gateway.view))
    }

    func clientInterface(_ device: DeviceRecord) -> ClientInterface {
        ClientInterface(ipv4: device.ipv4, ipv6: device.ipv6, upstreamDo53: config.upstreamDns.map(Do53Upstream.init),
                        upstreamDns: config.upstreamDns.map { LegacyDnsUpstream(address: SocketAddress(ip: $0, port: 53)) })
    }

    /// Every configured relay, then every joined one, once per address, with credentials for `publicKey`.
    func relays(for publicKey: PublicKey, expiresAt: Int64, in config: PortalConfig? = nil) -> [Relay] {
        let configured = (config ?? self.config).relays.map { ($0.id, $0.addresses, $0.secret) }
        let joined = joinedRelays.values.sorted { $0.id < $1.id }.map { ($0.id, $0.request.addresses, RelayConfig.Secret.stamp($0.secret)) }
        return (configured + joined).flatMap { id, addresses, secret in
            addresses.map { address in
                let credentials = Credentials.turn(secret: secret, publicKey: publicKey, expiresAt: expiresAt)
                return Relay.turn(TurnRelay(id: id, address: address, username: credentials.username,
                                            password: credentials.password, expiresAt: expiresAt))
            }
        }
    }

    /// `relays_presence` to every client and gateway: `disconnected` gone, every current relay (re)sent.
    func broadcastRelays(disconnected: [RelayId]) {
        for client in clients.values {
            let relays = relays(for: client.publicKey, expiresAt: Self.relayCredentialsExpireAt)
            push(.relaysPresence(RelaysPresence(disconnectedIds: disconnected, connected: relays)), to: client)
        }
        for gateway in gateways.values {
            let relays = relays(for: gateway.publicKey, expiresAt: Self.relayCredentialsExpireAt)
            push(.relaysPresence(RelaysPresence(disconnectedIds: disconnected, connected: relays)), to: gateway)
        }
    }

}
