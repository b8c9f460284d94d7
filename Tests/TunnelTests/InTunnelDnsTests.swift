import Dns
import DnsNat
import Foundation
import IpPacket
import PortalMessages
import SansIO
import Testing
@testable import Tunnel
@testable import TunnelSimulation

/// DNS queries the client recurses through the tunnel (spec §4.6.3, §4.6.6, §4.6.8): SRV/TXT of a DNS
/// resource to the gateway's `TUN IP:53535`, and queries for a portal upstream that lies inside a resource.
@Suite("ClientState: DNS recursion through the tunnel")
struct InTunnelDnsTests {
    static let web = ClientDnsTests.web
    static let sip = DnsRecordData.srv(priority: 10, weight: 5, port: 5060, target: DnsName("pbx.example.com")!)

    /// A nameserver that answers every query with one SRV record.
    static func srvAnswer(_ query: DnsMessage) -> DnsMessage {
        var response = DnsMessage.response(to: query, rcode: .noError)
        response.answers = [DnsRecord(name: query.questions[0].name, ttl: 300, data: sip)]
        return response
    }

    /// What the resources behind the gateway do with UDP to port 53: answer from the same socket; everything
    /// else is echoed.
    static func resourceNameserver(_ packet: IpPacket) -> IpPacket? {
        guard let udp = packet.udp, udp.destinationPort == 53, let query = try? DnsMessage(decoding: packet.bytes(in: udp.payloadRange))
        else { return ResourceHost.echo(packet) }
        return try? IpPacket.udp(source: packet.destination, destination: packet.source, sourcePort: udp.destinationPort,
                                 destinationPort: udp.sourcePort, payload: srvAnswer(query).encode())
    }

    func world(upstreams: [IpAddress] = [IpAddress("1.1.1.1")!], answering: Bool = true) throws -> ClientGatewayWorld {
        let world = try ClientGatewayWorld(upstreams: upstreams)
        world.portal.gatewayResources[Self.web] = .dns(id: Self.web, address: "**.example.com", name: "web", filters: [])
        world.gateway.kernel = Self.resourceNameserver
        world.gateway.nameserver = answering ? Self.srvAnswer : { _ in nil }
        try world.client.deliver(.resourceCreatedOrUpdated(.dns(.init(id: Self.web, address: "**.example.com", name: "web",
                                                                      sites: [world.site], ipStack: .dual))), in: world.simulation)
        return world
    }

    func dnsAnswers(_ world: ClientGatewayWorld) -> [DnsMessage] {
        world.client.toTun.compactMap { packet in
            guard let udp = packet.udp, udp.sourcePort == 53 else { return nil }
            return try? DnsMessage(decoding: packet.bytes(in: udp.payloadRange))
        }
    }

    @Test("SRV for a DNS resource: the first query asks for a flow, goes to the gateway's TUN IP:53535, the answer reaches the asker")
    func srvInSite() throws {
        let world = try world()
        let query = try ClientDnsTests().query("_sip._udp.app.example.com", type: .srv, world: world, id: 0x4242)
        world.client.fromTun(query, in: world.simulation)
        #expect(world.portal.createFlows.map(\.resourceId) == [Self.web], "the query is a connection trigger")
        #expect(world.simulation.run(within: .seconds(5)) { !dnsAnswers(world).isEmpty })
        #expect(world.gateway.toTun.isEmpty, "the gateway's own DNS server takes the query, not its TUN device")
        let forwarded = try #require(world.gateway.events.compactMap { if case .forwardDns(let query) = $0 { query } else { nil } }.first)
        #expect(forwarded.server == SocketAddress(ip: .v4(world.portal.gatewayIpv4), port: 53_535))
        #expect(forwarded.asker.ip == .v4(world.portal.clientIpv4) && (49_152...65_535).contains(forwarded.asker.port))
        #expect(!forwarded.overTcp && forwarded.query.questions.first?.type == .srv)
        let reply = try #require(world.client.toTun.last)
        #expect(reply.source == query.destination && reply.udp?.destinationPort == 5353, "from the sentinel to the asker")
        let answer = try #require(dnsAnswers(world).last)
        #expect(answer.id == 0x4242 && answer.flags.rcode == .noError)
        #expect(answer.answers.map(\.data) == [Self.sip])
        #expect(!world.client.events.contains { if case .recurseDns = $0 { true } else { false } })

        world.client.fromTun(try ClientDnsTests().query("_sip._udp.app.example.com", type: .txt, world: world, id: 7), in: world.simulation)
        world.simulation.run(for: .milliseconds(200))
        #expect(dnsAnswers(world).map(\.id) == [0x4242, 7], "the second query uses the authorised gateway at once")
        #expect(world.portal.createFlows.count == 1)
    }

    /// A query over TCP to the first sentinel from a scripted client; the answer after `settle`.
    func tcpQuery(_ message: DnsMessage, world: ClientGatewayWorld, port: UInt16 = 50_500,
                  settle: Duration = .seconds(1)) throws -> DnsMessage? {
        let sentinel = try #require(world.client.state.tunConfig?.dnsServers.first)
        let source = IpAddress.v4(world.portal.clientIpv4)
        func segment(_ flags: TcpFlags, sequence: UInt32, ack: UInt32, payload: [UInt8] = []) throws -> IpPacket {
            try IpPacket.tcp(source: source, destination: sentinel, sourcePort: port, destinationPort: 53, sequenceNumber: sequence,
                             acknowledgmentNumber: ack, flags: flags, window: 65_535, payload: payload)
        }
        let mark = world.client.toTun.count
        world.client.fromTun(try segment([.syn], sequence: 10, ack: 0), in: world.simulation)
        let synAck = try #require(world.client.toTun.last?.tcp)
        let framed = DnsTcpFraming.frame(message.encode())
        world.client.fromTun(try segment([.ack, .psh], sequence: 11, ack: synAck.sequenceNumber &+ 1, payload: framed), in: world.simulation)
        world.simulation.run(for: settle)
        let stream = world.client.toTun[mark...].compactMap { packet -> [UInt8]? in
            guard let tcp = packet.tcp, tcp.destinationPort == port, !tcp.payloadRange.isEmpty else { return nil }
            return Array(packet.bytes(in: tcp.payloadRange))
        }.flatMap { $0 }
        return DnsTcpFraming.nextMessage(in: stream).flatMap { try? DnsMessage(decoding: $0.message) }
    }

    @Test("SRV over TCP: the first query raises the intent and fails; the next goes over TCP to the gateway's port 53535")
    func srvInSiteOverTcp() throws {
        let world = try world()
        let srv = DnsMessage(id: 0x5151, flags: DnsFlags(), questions: [DnsQuestion(name: DnsName("_sip._tcp.app.example.com")!, type: .srv)])
        let first = try tcpQuery(srv, world: world, port: 50_500)
        #expect(first?.flags.rcode == .serverFailure, "no gateway yet: SERVFAIL, and the intent goes out")
        #expect(world.portal.createFlows.map(\.resourceId) == [Self.web])
        world.simulation.run(for: .seconds(3))
        let second = try #require(try tcpQuery(srv, world: world, port: 50_501))
        #expect(second.id == 0x5151 && second.answers.map(\.data) == [Self.sip])
        let forwarded = world.gateway.events.compactMap { if case .forwardDns(let query) = $0 { query } else { nil } }
        #expect(forwarded.map(\.overTcp) == [true], "the gateway's TCP server took the query")
    }

    @Test("an in-site query the gateway never answers fails with SERVFAIL after 30 s")
    func inSiteTimeout() throws {
        let world = try world(answering: false)
        world.client.fromTun(try ClientDnsTests().query("_sip._udp.app.example.com", type: .srv, world: world, id: 9), in: world.simulation)
        world.simulation.run(for: .seconds(29))
        #expect(dnsAnswers(world).isEmpty)
        world.simulation.run(for: .seconds(2))
        #expect(dnsAnswers(world).map(\.flags.rcode) == [.serverFailure])
        #expect(dnsAnswers(world).map(\.id) == [9])
    }

    @Test("a portal upstream inside a CIDR resource is queried through the tunnel, as resource traffic")
    func upstreamInsideResource() throws {
        let world = try world(upstreams: [IpAddress("10.0.0.53")!])
        world.client.fromTun(try ClientDnsTests().query("www.other.org", world: world, id: 31), in: world.simulation)
        #expect(world.portal.createFlows.map(\.resourceId) == [ClientGatewayWorld.lan])
        #expect(world.simulation.run(within: .seconds(5)) { !dnsAnswers(world).isEmpty })
        #expect(world.gateway.toTun.last?.destination == IpAddress("10.0.0.53")!)
        #expect(world.gateway.toTun.last?.udp?.destinationPort == 53)
        #expect(dnsAnswers(world).map(\.id) == [31])
        #expect(!world.client.events.contains { if case .recurseDns = $0 { true } else { false } })
    }

    @Test("an upstream outside every resource is left to the app")
    func upstreamOutsideResources() throws {
        let world = try world()
        world.client.fromTun(try ClientDnsTests().query("www.other.org", world: world), in: world.simulation)
        #expect(world.client.events.contains { if case .recurseDns = $0 { true } else { false } })
        #expect(world.portal.createFlows.isEmpty)
    }

    @Test("an answer from the wrong socket or with the wrong ID is not taken for the query's")
    func strictMatching() throws {
        var client = InTunnelDnsClient(random: SplitMix64(seed: 5))
        let question = DnsMessage(id: 77, flags: DnsFlags(), questions: [DnsQuestion(name: DnsName("a.example.com")!, type: .srv)])
        let pending = ClientDns.PendingQuery(query: question, asker: SocketAddress("100.64.0.2:5353")!,
                                             sentinel: IpAddress("100.100.111.1")!)
        let server = SocketAddress("100.64.0.1:53535")!
        let packet = client.packet(for: pending, from: IpAddress("100.64.0.2")!, to: server, now: Instant(nanoseconds: 0))
        let sent = try #require(packet)
        let port = try #require(sent.udp?.sourcePort)
        func reply(from source: SocketAddress, id: UInt16, toPort: UInt16 = port) throws -> IpPacket {
            var response = DnsMessage.response(to: question, rcode: .noError)
            response.id = id
            return try IpPacket.udp(source: source.ip, destination: IpAddress("100.64.0.2")!, sourcePort: source.port,
                                    destinationPort: toPort, payload: response.encode())
        }
        let wrongOnes = [try reply(from: SocketAddress("100.64.0.1:53")!, id: 77), try reply(from: SocketAddress("100.64.0.9:53535")!, id: 77),
                         try reply(from: server, id: 78), try reply(from: server, id: 77, toPort: port &+ 1)]
        for wrong in wrongOnes {
            let taken = client.answer(in: wrong)
            #expect(taken == nil)
        }
        let right = try reply(from: server, id: 77)
        let taken = client.answer(in: right)
        #expect(taken?.0 == pending)
        #expect(client.isEmpty)
    }
}
