import IpPacket
import Noise
import PortalMessages
import SansIO
import Testing
@testable import Tunnel

/// The parts ClientState is composed of, each on its own.
@Suite("ClientState's parts: resources, gateway peers, waiting packets")
struct ClientPartsTests {
    static let siteA = SiteId("5a5a5a5a-0000-4000-8000-00000000000a")!
    static let siteB = SiteId("5a5a5a5a-0000-4000-8000-00000000000b")!
    static let gateway = GatewayId("9a9a9a9a-0000-4000-8000-000000000001")!

    static func id(_ n: Int) -> ResourceId { ResourceId("aaaaaaaa-0000-4000-8000-00000000000\(n)")! }

    static func cidr(_ n: Int, _ network: String, sites: [SiteId] = [siteA]) -> ClientResource {
        .cidr(.init(id: id(n), address: IpNetwork(network)!, name: "r\(n)", sites: sites.map { Site(id: $0, name: "s") }))
    }

    // MARK: ClientResources

    @Test("longest CIDR match wins, then the Internet resource while it is enabled")
    func routeSelection() {
        var resources = ClientResources(internetResourceEnabled: false)
        resources.upsert(Self.cidr(1, "10.0.0.0/8"))
        resources.upsert(Self.cidr(2, "10.1.0.0/16"))
        resources.upsert(.internet(.init(id: Self.id(3), sites: [Site(id: Self.siteA, name: "s")])))
        resources.recomputeActiveCidrs { _ in false }
        #expect(resources.resource(for: IpAddress("10.1.2.3")!) == Self.id(2))
        #expect(resources.resource(for: IpAddress("10.9.9.9")!) == Self.id(1))
        #expect(resources.resource(for: IpAddress("192.0.2.1")!) == nil)
        #expect(!resources.routes.contains(IpNetwork("0.0.0.0/0")!))
        let enabled = resources.setInternetResource(enabled: true)
        let again = resources.setInternetResource(enabled: true)
        #expect(enabled && !again, "the second call changes nothing")
        #expect(resources.resource(for: IpAddress("192.0.2.1")!) == Self.id(3))
        #expect(resources.routes.contains(IpNetwork("0.0.0.0/0")!) && resources.routes.contains(IpNetwork("::/0")!))
    }

    @Test("two resources on one network: the lower id is active unless the other one is connected (spec §4.2)")
    func overlappingCidrs() {
        var resources = ClientResources(internetResourceEnabled: false)
        resources.upsert(Self.cidr(1, "10.0.0.0/24"))
        resources.upsert(Self.cidr(2, "10.0.0.0/24"))
        resources.recomputeActiveCidrs { _ in false }
        #expect(resources.resource(for: IpAddress("10.0.0.5")!) == Self.id(2), "ascending ids: the later one replaces")
        resources.recomputeActiveCidrs { $0 == Self.id(1) }
        #expect(resources.resource(for: IpAddress("10.0.0.5")!) == Self.id(1), "a connected resource keeps its network")
    }

    @Test("an update that moves the address or the sites must replace the resource; a rename need not")
    func addressability() {
        var resources = ClientResources(internetResourceEnabled: false)
        resources.upsert(Self.cidr(1, "10.0.0.0/24"))
        #expect(!resources.changesAddressability(.cidr(.init(id: Self.id(1), address: IpNetwork("10.0.0.0/24")!, name: "renamed",
                                                             sites: [Site(id: Self.siteA, name: "s")]))))
        #expect(resources.changesAddressability(Self.cidr(1, "10.0.1.0/24")))
        #expect(resources.changesAddressability(Self.cidr(1, "10.0.0.0/24", sites: [Self.siteB])))
        #expect(!resources.changesAddressability(Self.cidr(2, "10.0.9.0/24")), "a new resource replaces nothing")
    }

    @Test("status through sites: online if any site is, offline if all are; views only when they change")
    func statusThroughSites() {
        var resources = ClientResources(internetResourceEnabled: false)
        resources.upsert(Self.cidr(1, "10.0.0.0/24", sites: [Self.siteA, Self.siteB]))
        let first = resources.changedViews()
        let second = resources.changedViews()
        #expect(first?.map(\.status) == [.unknown])
        #expect(second == nil)
        resources.setStatus(.offline, ofSites: [Self.siteA])
        #expect(resources.status(of: Self.id(1)) == .unknown)
        resources.setStatus(.offline, ofSites: [Self.siteB])
        #expect(resources.status(of: Self.id(1)) == .offline)
        resources.setStatus(.online, ofSites: [Self.siteA])
        let online = resources.changedViews()
        #expect(online?.map(\.status) == [.online])
    }

    // MARK: GatewayPeers

    @Test("an authorised gateway is found by resource and tunnel address; forgetting it forgets its authorisations")
    func peersAndAuthorisations() {
        var peers = GatewayPeers()
        peers.authorize(Self.id(1), on: Self.gateway, site: Self.siteA, ipv4: IPv4Address(100, 64, 0, 1),
                        ipv6: IPv6Address("fd00:2021:1111::1")!)
        peers.authorize(Self.id(2), on: Self.gateway, site: Self.siteB, ipv4: IPv4Address(100, 64, 0, 9),
                        ipv6: IPv6Address("fd00:2021:1111::9")!)
        #expect(peers.gateway(for: Self.id(2)) == Self.gateway)
        #expect(peers.gateway(atTunnelAddress: IpAddress("100.64.0.1")!) == Self.gateway, "a known peer keeps its addresses")
        #expect(peers.gateway(atTunnelAddress: IpAddress("100.64.0.9")!) == nil)
        #expect(peers.sites(of: Self.gateway) == [Self.siteA, Self.siteB])
        peers.forget(Self.gateway)
        #expect(peers.gateway(for: Self.id(1)) == nil && peers.authorized.isEmpty && peers.ids.isEmpty)
        #expect(peers.sites(of: Self.gateway) == [Self.siteA, Self.siteB], "sites outlive the peer, for their status")
    }

    @Test("a gateway may send from its tunnel address and the networks it was allowed; the last revocation empties it")
    func allowedSources() {
        var peers = GatewayPeers()
        peers.authorize(Self.id(1), on: Self.gateway, site: Self.siteA, ipv4: IPv4Address(100, 64, 0, 1),
                        ipv6: IPv6Address("fd00:2021:1111::1")!)
        peers.authorize(Self.id(2), on: Self.gateway, site: Self.siteA, ipv4: IPv4Address(100, 64, 0, 1),
                        ipv6: IPv6Address("fd00:2021:1111::1")!)
        peers.allow([IpNetwork("10.0.0.0/24")!], for: Self.id(1), on: Self.gateway)
        peers.allow([IpNetwork("10.0.1.0/24")!], for: Self.id(2), on: Self.gateway)
        #expect(peers.allows(source: IpAddress("10.0.1.7")!, from: Self.gateway))
        #expect(peers.allows(source: IpAddress("100.64.0.1")!, from: Self.gateway))
        #expect(!peers.allows(source: IpAddress("10.0.2.7")!, from: Self.gateway))
        let afterFirst = peers.revoke(Self.id(2))
        #expect(afterFirst == nil, "resource 1 still allows sources")
        #expect(!peers.allows(source: IpAddress("10.0.1.7")!, from: Self.gateway))
        let afterLast = peers.revoke(Self.id(1))
        #expect(afterLast == Self.gateway)
        #expect(peers.ids.isEmpty)
    }

    // MARK: PendingPackets

    func packet(_ sequence: UInt16) throws -> IpPacket {
        try IpPacket.icmpEchoRequest(source: IpAddress("100.64.0.2")!, destination: IpAddress("10.0.0.5")!, identifier: 1,
                                     sequence: sequence, payload: [])
    }

    @Test("a wait keeps 128 packets, overwrites the oldest and says so; duplicates are not kept twice")
    func waitCapacity() throws {
        var pending = PendingPackets()
        var kept: [Bool] = []
        for sequence: UInt16 in 1...128 { kept.append(pending.hold(try packet(sequence), until: .flow(Self.id(1)))) }
        let duplicate = pending.hold(try packet(128), until: .flow(Self.id(1)))
        let overflow = pending.hold(try packet(129), until: .flow(Self.id(1)))
        #expect(kept.allSatisfy { $0 } && duplicate, "a duplicate overwrites nothing")
        #expect(!overflow)
        let released = pending.release(.flow(Self.id(1)))
        let again = pending.release(.flow(Self.id(1)))
        #expect(released.compactMap { $0.icmp.map { UInt16(truncatingIfNeeded: $0.restOfHeader) } } == Array(2...129))
        #expect(again.isEmpty)
    }

    @Test("a flow request is due at once, then at most every 2 s; its answer ends the wait")
    func flowRequests() {
        var pending = PendingPackets()
        let start = Instant(nanoseconds: 1_000_000_000)
        #expect(!pending.awaitsFlow(Self.id(1)))
        let first = pending.flowRequestDue(for: Self.id(1), now: start)
        #expect(first && pending.awaitsFlow(Self.id(1)))
        let tooSoon = pending.flowRequestDue(for: Self.id(1), now: start + .milliseconds(1999))
        let twoSecondsLater = pending.flowRequestDue(for: Self.id(1), now: start + .seconds(2))
        let otherResource = pending.flowRequestDue(for: Self.id(2), now: start + .seconds(2))
        #expect(!tooSoon && twoSecondsLater)
        #expect(otherResource, "per resource")
        _ = pending.release(.flow(Self.id(1)))
        #expect(!pending.awaitsFlow(Self.id(1)))
        let afresh = pending.flowRequestDue(for: Self.id(1), now: start + .seconds(2))
        #expect(afresh, "a new wait asks at once")
    }

    @Test("waits for a flow and for a connection are separate")
    func separateWaits() throws {
        var pending = PendingPackets()
        _ = pending.hold(try packet(1), until: .flow(Self.id(1)))
        _ = pending.hold(try packet(2), until: .connection(Self.gateway))
        pending.discard(.flow(Self.id(1)))
        let connectionWait = pending.release(.connection(Self.gateway))
        #expect(connectionWait.count == 1)
        _ = pending.hold(try packet(3), until: .connection(Self.gateway))
        pending.discardAll()
        let afterDiscard = pending.release(.connection(Self.gateway))
        #expect(afterDiscard.isEmpty)
    }

    // MARK: One batch, one configuration

    /// Seed #10223: the portal's messages of one batch (init, then resources added and removed) leave one TUN
    /// configuration and one resource list to apply, the latest, so the app touches netlink once.
    @Test("several changes in one batch queue only the latest TUN configuration and resource list")
    func latestConfigurationOnly() throws {
        let state = ClientState(privateKey: SecretKey(bytes: [UInt8](repeating: 9, count: 32))!, now: Instant(nanoseconds: 0),
                                unixTimeNanoseconds: 1_700_000_000_000_000_000)
        let interface = ClientInterface(ipv4: IPv4Address(100, 64, 0, 2), ipv6: IPv6Address("fd00:2021:1111::2")!)
        let now = Instant(nanoseconds: 1_000)
        state.handle(.initialize(ClientInit(interface: interface, resources: [Self.cidr(1, "10.1.0.0/16")], relays: [])), now: now)
        state.handle(.resourceCreatedOrUpdated(Self.cidr(2, "10.2.0.0/16")), now: now)
        state.handle(.resourceCreatedOrUpdated(Self.cidr(3, "10.3.0.0/16")), now: now)
        state.handle(.resourceDeleted(Self.id(1)), now: now)
        var configurations: [TunConfig] = [], lists: [[ResourceView]] = []
        while let event = state.pollEvent() {
            if case .tunInterfaceUpdated(let config) = event { configurations.append(config) }
            if case .resourcesChanged(let views) = event { lists.append(views) }
        }
        #expect(configurations.count == 1 && lists.count == 1, "\(configurations) \(lists)")
        let routes = try #require(configurations.first).routes
        #expect(routes.contains(IpNetwork("10.2.0.0/16")!) && routes.contains(IpNetwork("10.3.0.0/16")!))
        #expect(!routes.contains(IpNetwork("10.1.0.0/16")!))
        #expect(lists.first?.map(\.resource.id) == [Self.id(2), Self.id(3)])

        state.handle(.resourceDeleted(Self.id(2)), now: now)
        #expect(state.pollEvent().map { if case .tunInterfaceUpdated = $0 { true } else { false } } == true,
                "a later batch gets its own configuration")
    }
}
