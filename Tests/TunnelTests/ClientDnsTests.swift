import Dns
import DnsNat
import Foundation
import IpPacket
import P2pControl
import PortalMessages
import SansIO
import Testing
@testable import Tunnel
@testable import TunnelSimulation

/// DNS resources end to end: the stub resolver answers proxy IPs, the first packet asks for a flow, the
/// client sends AssignedIps, the gateway resolves, and the packet reaches the real address through NAT.
@Suite("ClientState: DNS resources through the stub resolver and DNS-resource NAT")
struct ClientDnsTests {
    static let web = ResourceId("bbbbbbbb-0000-4000-8000-000000000002")!
    static let realIp = IpAddress("203.0.113.80")!

    func world() throws -> ClientGatewayWorld {
        let world = try ClientGatewayWorld(upstreams: [IpAddress("1.1.1.1")!])
        world.portal.gatewayResources[Self.web] = .dns(id: Self.web, address: "*.example.com", name: "web", filters: [])
        world.gateway.resolver = { _ in [Self.realIp] }
        try world.client.deliver(.resourceCreatedOrUpdated(.dns(.init(id: Self.web, address: "*.example.com", name: "web",
                                                                      sites: [world.site], ipStack: .dual))), in: world.simulation)
        return world
    }

    func query(_ name: String, type: DnsRecordType = .a, world: ClientGatewayWorld, id: UInt16 = 0x1234) throws -> IpPacket {
        var flags = DnsFlags()
        flags.recursionDesired = true
        let message = DnsMessage(id: id, flags: flags, questions: [DnsQuestion(name: DnsName(name)!, type: type)])
        let sentinel = try #require(world.client.state.tunConfig?.dnsServers.first)
        return try IpPacket.udp(source: .v4(world.portal.clientIpv4), destination: sentinel, sourcePort: 5353, destinationPort: 53,
                                payload: message.encode())
    }

    func answer(_ packet: IpPacket) throws -> DnsMessage {
        let udp = try #require(packet.udp)
        return try DnsMessage(decoding: packet.bytes(in: udp.payloadRange))
    }

    @Test("a query for a DNS resource is answered with four proxy IPs from the sentinel")
    func stubAnswer() throws {
        let world = try world()
        world.client.fromTun(try query("app.example.com", world: world), in: world.simulation)
        let reply = try #require(world.client.toTun.last)
        #expect(reply.source == world.client.state.tunConfig?.dnsServers.first)
        let message = try answer(reply)
        #expect(message.id == 0x1234)
        let ips = message.answers.compactMap { if case .a(let ip) = $0.data { IpAddress.v4(ip) } else { nil } }
        #expect(ips.count == 4)
        #expect(ips.allSatisfy { ProxyIpAllocator.isProxyIp($0) })
        #expect(world.portal.createFlows.isEmpty, "resolving alone does not ask for a flow")
    }

    @Test("the first packet to a proxy IP creates the flow, sets up NAT on the gateway and reaches the real address")
    func trafficThroughNat() throws {
        let world = try world()
        world.client.fromTun(try query("app.example.com", world: world), in: world.simulation)
        let proxies = try answer(try #require(world.client.toTun.last)).answers.compactMap { record -> IpAddress? in
            if case .a(let ip) = record.data { .v4(ip) } else { nil }
        }
        let proxy = try #require(proxies.first)
        let packet = try IpPacket.udp(source: .v4(world.portal.clientIpv4), destination: proxy, sourcePort: 7000, destinationPort: 443,
                                      payload: Array("hello".utf8))
        world.client.fromTun(packet, in: world.simulation)
        #expect(world.portal.createFlows.map(\.resourceId) == [Self.web])
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 2 })
        #expect(world.gateway.toTun.map(\.destination) == [Self.realIp], "translated to the resolved address")
        let reply = try #require(world.client.toTun.last)
        #expect(reply.source == proxy, "the reply comes from the proxy IP the application used")
        #expect(reply.udp?.destinationPort == 7000)
        #expect(world.gateway.events.contains { if case .resolve = $0 { true } else { false } })
    }

    @Test("a query for any other name goes to the app to recurse; its answer reaches the asker with the query's id")
    func recursion() throws {
        let world = try world()
        world.client.fromTun(try query("www.other.org", world: world, id: 77), in: world.simulation)
        guard case let .recurseDns(pending, upstream)? = world.client.events.last else {
            Issue.record("expected a recursion request, got \(String(describing: world.client.events.last))")
            return
        }
        #expect(upstream == .do53(IpAddress("1.1.1.1")!))
        var response = DnsMessage.response(to: pending.query, rcode: .noError)
        response.id = 999
        response.answers = [DnsRecord(name: DnsName("www.other.org")!, ttl: 60, data: .a(IPv4Address(192, 0, 2, 44)))]
        world.client.state.dnsAnswered(pending, response: response, now: world.simulation.now)
        world.client.flush(in: world.simulation)
        let reply = try answer(try #require(world.client.toTun.last))
        #expect(reply.id == 77)
        #expect(reply.answers.count == 1)
    }

    func proxies(for name: String, in world: ClientGatewayWorld) throws -> [IpAddress] {
        world.client.fromTun(try query(name, world: world), in: world.simulation)
        return try answer(try #require(world.client.toTun.last)).answers.compactMap { record -> IpAddress? in
            if case .a(let ip) = record.data { .v4(ip) } else { nil }
        }
    }

    func udp(to proxy: IpAddress, port: UInt16, world: ClientGatewayWorld) throws -> IpPacket {
        try IpPacket.udp(source: .v4(world.portal.clientIpv4), destination: proxy, sourcePort: port, destinationPort: 443, payload: [1])
    }

    func resolveCount(_ world: ClientGatewayWorld) -> Int {
        world.gateway.events.filter { if case .resolve = $0 { true } else { false } }.count
    }

    @Test("a domain the gateway could not resolve is not retried on every packet, only after a new query (seed 002)")
    func failedDomainNotRetried() throws {
        let world = try world()
        world.gateway.resolver = { _ in nil }
        let proxy = try #require(try proxies(for: "gone.example.com", in: world).first)
        world.client.fromTun(try udp(to: proxy, port: 7000, world: world), in: world.simulation)
        world.simulation.run(for: .seconds(3))
        #expect(resolveCount(world) == 1)
        for port in UInt16(7001)...7003 {
            world.client.fromTun(try udp(to: proxy, port: port, world: world), in: world.simulation)
            world.simulation.run(for: .seconds(3))
        }
        #expect(resolveCount(world) == 1, "Inactive is final until the domain is queried again")
        world.gateway.resolver = { _ in [Self.realIp] }
        _ = try proxies(for: "gone.example.com", in: world)
        world.client.fromTun(try udp(to: proxy, port: 7004, world: world), in: world.simulation)
        world.simulation.run(for: .seconds(1))
        #expect(resolveCount(world) == 2)
        #expect(world.gateway.toTun.last?.destination == Self.realIp)
    }

    @Test("a lost AssignedIps is sent again with the next packet after 2 s; the buffered packets then arrive (seed 003)")
    func lostAssignedIps() throws {
        let world = try world()
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.gateway.toTun.count == 1 })
        let proxy = try #require(try proxies(for: "app.example.com", in: world).first)
        let clientIp = world.client.socket.ip
        world.simulation.dropRules.append { $0.source.ip == clientIp }
        world.client.fromTun(try udp(to: proxy, port: 7000, world: world), in: world.simulation)
        world.simulation.run(for: .seconds(1))
        world.simulation.dropRules.removeAll()
        world.simulation.run(for: .seconds(3))
        #expect(resolveCount(world) == 0, "the AssignedIps was lost and no timer resends it")
        world.client.fromTun(try udp(to: proxy, port: 7001, world: world), in: world.simulation)
        world.simulation.run(for: .seconds(1))
        #expect(resolveCount(world) == 1)
        #expect(world.gateway.toTun.dropFirst().map { $0.udp?.sourcePort } == [7000, 7001])
    }

    /// The client's process starts again and rejoins: `init`, then the DNS resource.
    func rejoin(_ world: ClientGatewayWorld, keepingProxyIps: Bool) throws {
        world.client.restart(keepingProxyIps: keepingProxyIps, signOut: false, in: world.simulation)
        try world.client.deliver(.initialize(world.clientInit), in: world.simulation)
        try world.client.deliver(.resourceCreatedOrUpdated(.dns(.init(id: Self.web, address: "*.example.com", name: "web",
                                                                      sites: [world.site], ipStack: .dual))), in: world.simulation)
        world.simulation.run(for: .seconds(1))
    }

    func renumberCount(_ world: ClientGatewayWorld) -> Int? {
        world.gateway.state.clients[world.portal.clientId]?.dnsNat.renumberCount
    }

    @Test("a restarted client that imports its records keeps its proxy IPs; the gateway's NAT stays (seed 004 #10104)")
    func proxyIpsSurviveRestart() throws {
        let world = try world()
        let earlier = try proxies(for: "early.example.com", in: world)
        let before = try proxies(for: "app.example.com", in: world)
        #expect(Set(world.client.keptProxyIpRecords.map(\.domain)) == [DnsName("early.example.com")!, DnsName("app.example.com")!])
        world.client.fromTun(try udp(to: before[0], port: 7000, world: world), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.gateway.toTun.count == 1 })

        try rejoin(world, keepingProxyIps: true)
        #expect(try proxies(for: "app.example.com", in: world) == before, "asked first after the restart, still its own IPs")
        #expect(try proxies(for: "early.example.com", in: world) == earlier)
        let other = try proxies(for: "other.example.com", in: world)
        #expect(other.count == 4 && Set(other).isDisjoint(with: before + earlier), "new domains never reuse an imported address")
        world.client.fromTun(try udp(to: before[0], port: 7001, world: world), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(10)) { world.gateway.toTun.count == 2 })
        #expect(world.gateway.toTun.last?.destination == Self.realIp)
        #expect(renumberCount(world) == 0)
    }

    @Test("a restarted client without its records re-numbers; the gateway resets its NAT and routes the new domain (#10310)")
    func renumberedClient() throws {
        let world = try world()
        let first = IpAddress("203.0.113.80")!, second = IpAddress("203.0.113.81")!
        world.gateway.resolver = { $0 == DnsName("app.example.com")! ? [first] : [second] }
        let before = try proxies(for: "app.example.com", in: world)
        world.client.fromTun(try udp(to: before[0], port: 7000, world: world), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.gateway.toTun.count == 1 })
        #expect(world.gateway.toTun.last?.destination == first)

        try rejoin(world, keepingProxyIps: false)
        let after = try proxies(for: "db.example.com", in: world)
        #expect(after == before, "numbering starts again from the front")
        world.client.fromTun(try udp(to: after[0], port: 7001, world: world), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(10)) { world.gateway.toTun.count == 2 })
        #expect(world.gateway.toTun.last?.destination == second, "the old domain's translation must not be used")
        #expect(renumberCount(world) == 1)
    }

    @Test("a new query re-resolves on the gateway: new flows go to the new address, an open session keeps the old one")
    func reResolution() throws {
        let world = try world()
        let old = IpAddress("203.0.113.80")!, new = IpAddress("203.0.113.90")!
        var current = old
        world.gateway.resolver = { _ in [current] }
        let proxy = try #require(try proxies(for: "app.example.com", in: world).first)
        world.client.fromTun(try udp(to: proxy, port: 7000, world: world), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.gateway.toTun.count == 1 })
        #expect(world.gateway.toTun.last?.destination == old)

        current = new
        world.simulation.run(for: .seconds(3))
        #expect(try proxies(for: "app.example.com", in: world).first == proxy, "the proxy IP stays")
        world.client.fromTun(try udp(to: proxy, port: 7001, world: world), in: world.simulation)
        world.simulation.run(for: .seconds(1))
        #expect(resolveCount(world) == 2, "the query made the gateway resolve again")
        world.client.fromTun(try udp(to: proxy, port: 7002, world: world), in: world.simulation)
        world.client.fromTun(try udp(to: proxy, port: 7000, world: world), in: world.simulation)
        world.simulation.run(for: .seconds(1))
        let byPort = Dictionary(world.gateway.toTun.compactMap { packet in packet.udp.map { ($0.sourcePort, packet.destination) } },
                                uniquingKeysWith: { _, last in last })
        #expect(byPort[7002] == new, "a new session goes to the new address")
        #expect(byPort[7000] == old, "the open session keeps its address")
    }
}
