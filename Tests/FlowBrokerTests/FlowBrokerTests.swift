import FlowBroker
import Ice
import PortalMessages
import SansIO
import Testing

/// The portal's flow rule on its own: who gets `authorize_flow`, what `flow_created` carries, candidates,
/// authorisations and their expiry.
@Suite struct FlowBrokerTests {
    static let site = SiteId("5a5a5a5a-0000-4000-8000-000000000001")!
    static let otherSite = SiteId("5a5a5a5a-0000-4000-8000-000000000002")!
    static let resource = ResourceId("aaaaaaaa-0000-4000-8000-000000000001")!
    static let client = ClientId("cccccccc-0000-4000-8000-000000000001")!
    static let gateways = (1...3).map { GatewayId("dddddddd-0000-4000-8000-00000000000\($0)")! }

    struct Policy: FlowPolicy {
        var sites = [FlowBrokerTests.site]
        var accessLifetime: Duration? = .seconds(3600)

        func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource? {
            guard id == FlowBrokerTests.resource, client.actor == "alice" else { return nil }
            return BrokeredResource(sites: sites, gatewayView: .cidr(id: id, address: IpNetwork("10.0.0.0/24")!, name: "lan", filters: []))
        }

        func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway, resource: ResourceId, unixTime: Int64,
                 expiresAt: Int64?) -> FlowSecrets {
            FlowSecrets(presharedKey: PresharedKey(WireGuardKey(bytes: [UInt8](repeating: 9, count: 32))!),
                        client: IceCredentials(ufrag: "cuf\(gateway.id.description.suffix(1))", password: "client-password-xxxxxxxx"),
                        gateway: IceCredentials(ufrag: "guf\(gateway.id.description.suffix(1))", password: "gateway-password-xxxxxxx"))
        }
    }

    static func key(_ byte: UInt8) -> PublicKey { WireGuardKey(bytes: [UInt8](repeating: byte, count: 32))! }

    func broker(gateways: [(GatewayId, SiteId)], actor: String = "alice", gatewayVersion: String = "1.6.0") -> FlowBroker {
        var broker = FlowBroker(random: SplitMix64(seed: 1))
        for (index, (id, site)) in gateways.enumerated() {
            broker.gatewayJoined(FlowBroker.Gateway(id: id, publicKey: Self.key(UInt8(index + 1)), site: site,
                                                    ipv4: IPv4Address(100, 64, 0, UInt8(index + 1)),
                                                    ipv6: IPv6Address("fd00:2021:1111::\(index + 1)")!, version: gatewayVersion))
        }
        broker.clientJoined(FlowBroker.Client(id: Self.client, actor: actor, publicKey: Self.key(0xCC), ipv4: IPv4Address(100, 64, 0, 9),
                                              ipv6: IPv6Address("fd00:2021:1111::9")!, version: "1.5.0",
                                              subject: Subject(actorName: actor)))
        return broker
    }

    func outputs(_ broker: inout FlowBroker) -> [FlowBroker.Output] {
        var all: [FlowBroker.Output] = []
        while let output = broker.pollOutput() { all.append(output) }
        return all
    }

    func createFlow(_ broker: inout FlowBroker, connected: [GatewayId] = [], unixTime: Int64 = 1_000) -> [FlowBroker.Output] {
        broker.handle(.createFlow(CreateFlow(resourceId: Self.resource, connectedGatewayIds: connected)), from: Self.client,
                      policy: Policy(), unixTime: unixTime)
        return outputs(&broker)
    }

    @Test func createFlowAuthorizesAGatewayOfTheSiteAndFlowAuthorizedCreatesTheFlow() throws {
        var broker = broker(gateways: [(Self.gateways[0], Self.otherSite), (Self.gateways[1], Self.site)])
        guard case let .toGateway(gateway, .authorizeFlow(authorize))? = createFlow(&broker).first else {
            Issue.record("no authorize_flow")
            return
        }
        #expect(gateway == Self.gateways[1], "the only gateway of the resource's site")
        #expect(authorize.client.id == Self.client && authorize.client.version == "1.5.0")
        #expect(authorize.expiresAt == Int64(4_600))
        #expect(authorize.subject?.actorName == "alice")
        #expect(broker.handle(.flowAuthorized(ref: authorize.ref), from: gateway) == .ok)
        guard case let .toClient(client, .flowCreated(created))? = outputs(&broker).first else {
            Issue.record("no flow_created")
            return
        }
        #expect(client == Self.client)
        #expect(created.gatewayId == gateway && created.siteId == Self.site && created.gatewayPublicKey == Self.key(2))
        #expect(created.clientIceCredentials == authorize.clientIceCredentials && created.presharedKey == authorize.client.presharedKey)
        #expect(broker.authorizations(on: gateway) == [AccessExpiry(clientId: Self.client, resourceId: Self.resource, expiresAt: 4_600)])
        #expect(broker.handle(.flowAuthorized(ref: authorize.ref), from: gateway) == .error(reason: "invalid_ref"), "a ref is used once")
    }

    @Test func aGatewayTheClientIsConnectedToIsPreferred() throws {
        var broker = broker(gateways: Self.gateways.map { ($0, Self.site) })
        for _ in 0..<10 {
            guard case let .toGateway(gateway, _)? = createFlow(&broker, connected: [Self.gateways[2]]).first else {
                Issue.record("no authorize_flow")
                return
            }
            #expect(gateway == Self.gateways[2])
        }
    }

    @Test func aResourceTheClientMayNotReachIsNotFoundAndASiteWithoutGatewaysIsOffline() {
        var stranger = broker(gateways: [(Self.gateways[0], Self.site)], actor: "mallory")
        #expect(createFlow(&stranger) == [.toClient(Self.client, .flowCreationFailed(FlowCreationFailed(resourceId: Self.resource,
                                                                                                       reason: .notFound)))])
        var empty = broker(gateways: [(Self.gateways[0], Self.otherSite)])
        #expect(createFlow(&empty) == [.toClient(Self.client, .flowCreationFailed(FlowCreationFailed(resourceId: Self.resource,
                                                                                                    reason: .offline)))])
    }

    @Test func flowAuthorizedFromAnotherGatewayOrAnUnknownRefIsRefused() throws {
        var broker = broker(gateways: [(Self.gateways[0], Self.site), (Self.gateways[1], Self.otherSite)])
        guard case let .toGateway(_, .authorizeFlow(authorize))? = createFlow(&broker).first else {
            Issue.record("no authorize_flow")
            return
        }
        #expect(broker.handle(.flowAuthorized(ref: authorize.ref), from: Self.gateways[1]) == .error(reason: "invalid_ref"))
        #expect(broker.handle(.flowAuthorized(ref: "nonsense"), from: Self.gateways[0]) == .error(reason: "invalid_ref"))
        #expect(outputs(&broker).isEmpty && broker.authorizations.isEmpty)
    }

    @Test func candidatesGoOnlyToConnectedPeersTheSenderNames() throws {
        var broker = broker(gateways: [(Self.gateways[0], Self.site)])
        let candidate = try IceCandidateString.parse("candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host")
        broker.handle(.broadcastIceCandidates(CandidatesForGateways(peers: [Self.gateways[0], Self.gateways[1]], candidates: [candidate])),
                      from: Self.client, policy: Policy(), unixTime: 0)
        #expect(outputs(&broker) == [.toGateway(Self.gateways[0], .iceCandidates(ClientCandidates(peer: Self.client, candidates: [candidate])))])
        _ = broker.handle(.broadcastInvalidatedIceCandidates(CandidatesForClients(peers: [Self.client], candidates: [candidate])),
                          from: Self.gateways[0])
        #expect(outputs(&broker) == [.toClient(Self.client, .invalidateIceCandidates(GatewayCandidates(peer: Self.gateways[0],
                                                                                                      candidates: [candidate])))])
        broker.clientLeft(Self.client)
        _ = broker.handle(.broadcastIceCandidates(CandidatesForClients(peers: [Self.client], candidates: [candidate])), from: Self.gateways[0])
        #expect(outputs(&broker).isEmpty, "a client that left hears nothing")
    }

    @Test func authorisationsExpireAndCanBeRevoked() throws {
        var broker = broker(gateways: [(Self.gateways[0], Self.site)])
        guard case let .toGateway(gateway, .authorizeFlow(authorize))? = createFlow(&broker, unixTime: 100).first else {
            Issue.record("no authorize_flow")
            return
        }
        _ = broker.handle(.flowAuthorized(ref: authorize.ref), from: gateway)
        _ = outputs(&broker)
        broker.expireAuthorizations(unixTime: 3_699)
        #expect(broker.authorizations.count == 1)
        broker.revoke(AccessKey(clientId: Self.client, resourceId: Self.resource))
        #expect(outputs(&broker) == [.toGateway(gateway, .rejectAccess(AccessKey(clientId: Self.client, resourceId: Self.resource)))])
        #expect(broker.authorizations.isEmpty)

        guard case let .toGateway(_, .authorizeFlow(second))? = createFlow(&broker, unixTime: 100).first else {
            Issue.record("no second authorize_flow")
            return
        }
        _ = broker.handle(.flowAuthorized(ref: second.ref), from: gateway)
        broker.expireAuthorizations(unixTime: 3_700)
        #expect(broker.authorizations.isEmpty, "gone at its expiry")
    }

    @Test(arguments: [("1.6.0", true), ("1.4.19", true), ("1.4.0", true), ("1.3.9", false), ("1.7.0", false), (nil, false)])
    func aGatewayOutsideTheClientsVersionWindowIsAVersionMismatch(gatewayVersion: String?, serves: Bool) throws {
        var broker = FlowBroker(random: SplitMix64(seed: 1))
        broker.gatewayJoined(FlowBroker.Gateway(id: Self.gateways[0], publicKey: Self.key(1), site: Self.site, ipv4: IPv4Address(100, 64, 0, 1),
                                                ipv6: IPv6Address("fd00:2021:1111::1")!, version: gatewayVersion))
        broker.clientJoined(FlowBroker.Client(id: Self.client, actor: "alice", publicKey: Self.key(0xCC), ipv4: IPv4Address(100, 64, 0, 9),
                                              ipv6: IPv6Address("fd00:2021:1111::9")!, version: "1.5.5"))
        let first = createFlow(&broker).first
        if serves {
            guard case .toGateway(_, .authorizeFlow)? = first else { throw Failure("gateway \(gatewayVersion ?? "nil") did not get the flow") }
        } else {
            #expect(first == .toClient(Self.client, .flowCreationFailed(FlowCreationFailed(resourceId: Self.resource, reason: .versionMismatch))),
                    "client 1.5.5 may use gateways in [1.4.0, 1.7.0); \(gatewayVersion ?? "nil") is outside")
        }
    }

    @Test func theInternetResourceNeedsAGatewayOfOnePointThree() {
        struct InternetPolicy: FlowPolicy {
            func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource? {
                BrokeredResource(sites: [FlowBrokerTests.site], gatewayView: .internet(id: id))
            }
            func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway, resource: ResourceId, unixTime: Int64,
                         expiresAt: Int64?) -> FlowSecrets {
                Policy().secrets(client: client, gateway: gateway, resource: resource, unixTime: unixTime, expiresAt: expiresAt)
            }
            var accessLifetime: Duration? { nil }
        }
        var broker = FlowBroker(random: SplitMix64(seed: 1))
        broker.gatewayJoined(FlowBroker.Gateway(id: Self.gateways[0], publicKey: Self.key(1), site: Self.site, ipv4: IPv4Address(100, 64, 0, 1),
                                                ipv6: IPv6Address("fd00:2021:1111::1")!, version: "1.2.5"))
        broker.clientJoined(FlowBroker.Client(id: Self.client, actor: "alice", publicKey: Self.key(0xCC), ipv4: IPv4Address(100, 64, 0, 9),
                                              ipv6: IPv6Address("fd00:2021:1111::9")!, version: "1.3.0"))
        broker.handle(.createFlow(CreateFlow(resourceId: Self.resource, connectedGatewayIds: [])), from: Self.client, policy: InternetPolicy(),
                      unixTime: 0)
        #expect(outputs(&broker) == [.toClient(Self.client, .flowCreationFailed(FlowCreationFailed(resourceId: Self.resource,
                                                                                                  reason: .versionMismatch)))])
    }
}

/// The portal's version rules on their own (spec `portal-phoenix.md` §8).
@Suite struct VersionGatesTests {
    typealias Version = VersionGates.Version
    static let site = [Site(id: SiteId("5a5a5a5a-0000-4000-8000-000000000001")!, name: "hq")]

    @Test(arguments: [("1.5.11", Version(1, 5, 11)), ("1.6.0-beta.1", Version(1, 6, 0)), ("0.1.0", Version(0, 1, 0))])
    func versionsParse(text: String, version: Version) {
        #expect(Version(text) == version)
    }

    @Test(arguments: ["1.5", "1.5.x", "", "v1.5.0", "1.5.0.1"])
    func notVersions(text: String) {
        #expect(Version(text) == nil)
    }

    @Test(arguments: [
        ("*.wiki.example", "1.1.9", "?.wiki.example"), ("**.wiki.example", "1.1.9", "*.wiki.example"),
        ("wiki.example", "1.1.9", "wiki.example"), ("a.*.example", "1.1.9", nil), ("?.wiki.example", "1.1.9", nil),
        ("***.example", "1.1.9", nil), ("*.wiki.example", "1.2.0", "*.wiki.example"), ("a.*.example", "1.5.11", "a.*.example"),
    ])
    func dnsWildcardsBeforeOnePointTwoUseTheOldSyntax(address: String, version: String, shown: String?) throws {
        let resource = ClientResource.dns(.init(id: ResourceId.random(), address: address, name: "n", sites: Self.site))
        let adapted = VersionGates.adapt(resource, for: try #require(Version(version)))
        guard case .dns(let dns)? = adapted else {
            #expect(shown == nil, "\(address) for \(version) was dropped")
            return
        }
        #expect(dns.address == shown)
    }

    @Test func theInternetResourceNeedsOnePointThree() {
        let internet = ClientResource.internet(.init(id: ResourceId.random(), sites: Self.site))
        #expect(VersionGates.adapt(internet, for: Version(1, 2, 9)) == nil)
        #expect(VersionGates.adapt(internet, for: Version(1, 3, 0)) == internet)
    }

    @Test func oursAndTodaysFirezoneAreInsideEachOthersWindow() {
        let cidr = GatewayResource.cidr(id: ResourceId.random(), address: IpNetwork("10.0.0.0/8")!, name: "n", filters: [])
        // Our gateway (1.6.0) serves every Firezone client release from 1.5.0 to 1.7.x; our client (1.5.11) is served by
        // gateways from 1.4.0 to 1.6.x.
        for client in [Version(1, 5, 0), Version(1, 5, 11), Version(1, 5, 16), Version(1, 6, 3), Version(1, 7, 0)] {
            #expect(VersionGates.gateway(Version(1, 6, 0), canServe: client, resource: cidr), "\(client)")
        }
        for gateway in [Version(1, 4, 19), Version(1, 5, 2), Version(1, 6, 0), Version(1, 6, 1)] {
            #expect(VersionGates.gateway(gateway, canServe: Version(1, 5, 11), resource: cidr), "\(gateway)")
        }
        #expect(!VersionGates.gateway(Version(0, 1, 0), canServe: Version(1, 5, 5), resource: cidr), "0.1.0 serves no Firezone client")
    }

    @Test func headlessClientsReadSitesFromOnePointFiveSix() {
        #expect(!VersionGates.readsSites(component: "headless-client", version: Version(1, 5, 5)))
        #expect(VersionGates.readsSites(component: "headless-client", version: Version(1, 5, 6)))
        #expect(!VersionGates.readsSites(component: "apple-client", version: Version(1, 5, 10)))
        #expect(VersionGates.readsSites(component: "gui-client", version: Version(1, 5, 10)))
        #expect(!VersionGates.readsSites(component: "gateway", version: Version(1, 6, 0)))
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
