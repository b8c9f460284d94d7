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

        func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway) -> FlowSecrets {
            FlowSecrets(presharedKey: PresharedKey(WireGuardKey(bytes: [UInt8](repeating: 9, count: 32))!),
                        client: IceCredentials(ufrag: "cuf\(gateway.id.description.suffix(1))", password: "client-password-xxxxxxxx"),
                        gateway: IceCredentials(ufrag: "guf\(gateway.id.description.suffix(1))", password: "gateway-password-xxxxxxx"))
        }
    }

    static func key(_ byte: UInt8) -> PublicKey { WireGuardKey(bytes: [UInt8](repeating: byte, count: 32))! }

    func broker(gateways: [(GatewayId, SiteId)], actor: String = "alice") -> FlowBroker {
        var broker = FlowBroker(random: SplitMix64(seed: 1))
        for (index, (id, site)) in gateways.enumerated() {
            broker.gatewayJoined(FlowBroker.Gateway(id: id, publicKey: Self.key(UInt8(index + 1)), site: site,
                                                    ipv4: IPv4Address(100, 64, 0, UInt8(index + 1)),
                                                    ipv6: IPv6Address("fd00:2021:1111::\(index + 1)")!))
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
}
