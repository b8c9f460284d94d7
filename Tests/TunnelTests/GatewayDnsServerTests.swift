import Dns
import Foundation
import IpPacket
import PortalMessages
import SansIO
import Testing
@testable import Tunnel
@testable import TunnelSimulation

/// The gateway's TUN DNS server on port 53535 (spec §5.9): queries over UDP and TCP go to the app's
/// nameserver, answers come back on the same transport; UDP answers are capped at 1200 bytes.
@Suite("GatewayState: the TUN DNS server on port 53535")
struct GatewayDnsServerTests {
    func world(records: Int) throws -> GatewayWorld {
        let world = try GatewayStateTests().world()
        world.gateway.nameserver = { query in
            var response = DnsMessage.response(to: query, rcode: .noError)
            response.answers = (0..<records).map {
                DnsRecord(name: query.questions[0].name, ttl: 60, data: .txt([Array("record \($0) of a long TXT answer".utf8)]))
            }
            return response
        }
        return world
    }

    var server: IpAddress { .v4(IPv4Address(100, 64, 0, 1)) }

    func query(_ id: UInt16) -> DnsMessage {
        DnsMessage(id: id, flags: DnsFlags(), questions: [DnsQuestion(name: DnsName("_x._tcp.app.example.com")!, type: .txt)])
    }

    func dnsAnswers(_ world: GatewayWorld) -> [DnsMessage] {
        world.clientReceived().compactMap { packet in
            guard let udp = packet.udp, udp.sourcePort == 53_535 else { return nil }
            return try? DnsMessage(decoding: packet.bytes(in: udp.payloadRange))
        }
    }

    @Test("a UDP query is forwarded and answered from TUN IP:53535; a long answer is truncated with TC")
    func udp() throws {
        let world = try world(records: 3)
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: server, sourcePort: 50_000, destinationPort: 53_535,
                                    payload: query(1).encode()))
        #expect(world.gateway.toTun.isEmpty)
        #expect(dnsAnswers(world).map(\.id) == [1])
        #expect(dnsAnswers(world).first?.answers.count == 3)

        world.gateway.nameserver = try self.world(records: 60).gateway.nameserver
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: server, sourcePort: 50_001, destinationPort: 53_535,
                                    payload: query(2).encode()))
        let long = try #require(dnsAnswers(world).last)
        #expect(long.id == 2 && long.flags.isTruncated && long.answers.isEmpty)
        let packet = try #require(world.clientReceived().last)
        #expect(packet.bytes.count - 28 <= 1_200)
    }

    @Test("no answer from the nameserver is SERVFAIL; a packet that is no query is dropped and counted")
    func failures() throws {
        let world = try world(records: 1)
        world.gateway.nameserver = { _ in nil }
        let event = try #require({
            try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: server, sourcePort: 50_000, destinationPort: 53_535,
                                        payload: query(5).encode()))
            return world.gateway.events.compactMap { if case .forwardDns(let query) = $0 { query } else { nil } }.last
        }())
        world.gateway.state.dnsAnswered(event, response: nil, now: world.simulation.now)
        world.gateway.flush(in: world.simulation)
        world.simulation.run(for: .milliseconds(100))
        #expect(dnsAnswers(world).map(\.id) == [5])
        #expect(dnsAnswers(world).first?.flags.rcode == .serverFailure)
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: server, sourcePort: 50_002, destinationPort: 53_535,
                                    payload: [1, 2, 3]))
        #expect(world.gateway.state.statistics.drops[.badDnsQuery] == 1)
    }

    @Test("a TCP query is answered on its connection, length-prefixed")
    func tcp() throws {
        let world = try world(records: 60)
        let clientIp = IpAddress.v4(world.clientIpv4)
        func segment(_ flags: TcpFlags, sequence: UInt32, ack: UInt32, payload: [UInt8] = []) throws -> IpPacket {
            try IpPacket.tcp(source: clientIp, destination: server, sourcePort: 50_100, destinationPort: 53_535, sequenceNumber: sequence,
                             acknowledgmentNumber: ack, flags: flags, window: 65_535, payload: payload)
        }
        try world.send(segment([.syn], sequence: 100, ack: 0))
        let synAck = try #require(world.clientReceived().last?.tcp)
        #expect(synAck.flags == [.syn, .ack] && synAck.acknowledgmentNumber == 101)
        let framed = DnsTcpFraming.frame(query(9).encode())
        try world.send(segment([.ack, .psh], sequence: 101, ack: synAck.sequenceNumber &+ 1, payload: framed))
        let stream = world.clientReceived().compactMap { packet -> [UInt8]? in
            guard let tcp = packet.tcp, tcp.sourcePort == 53_535, !tcp.payloadRange.isEmpty else { return nil }
            return Array(packet.bytes(in: tcp.payloadRange))
        }.flatMap { $0 }
        let (bytes, _) = try #require(DnsTcpFraming.nextMessage(in: stream))
        let answer = try DnsMessage(decoding: bytes)
        #expect(answer.id == 9 && answer.answers.count == 60 && !answer.flags.isTruncated, "TCP carries the whole answer")
        #expect(world.gateway.toTun.isEmpty)
    }
}
