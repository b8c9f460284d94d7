import Dns
import DnsNat
import Foundation
import IpPacket
import PcapFile
import TestSupport
import Testing

/// ICMP errors about NATed flows, and every translated packet checked by tshark with checksum validation on.
@Suite(.offPool) struct GatewayNatIcmpAndTsharkTests {
    static let resource = DnsResource(id: ResourceId("55555555-5555-5555-5555-555555555555")!, pattern: DomainPattern("app.example.com"))
    static let v4 = (client: IpAddress("100.64.0.7")!, proxy: IpAddress("100.96.0.1")!, real: IpAddress("192.0.2.9")!)
    static let v6 = (client: IpAddress("fd00:2021:1111::7")!, proxy: IpAddress("fd00:2021:1111:8000::")!, real: IpAddress("2001:db8::9")!)
    let now = Instant(nanoseconds: 1)

    func gateway() throws -> GatewayDnsNat {
        var nat = GatewayDnsNat()
        try nat.setupNat(domain: DnsName("app.example.com")!, resource: Self.resource, resolved: [Self.v4.real, Self.v6.real],
                         proxyIps: [Self.v4.proxy, IpAddress("100.96.0.2")!, IpAddress("100.96.0.3")!, IpAddress("100.96.0.4")!,
                                    Self.v6.proxy, IpAddress("fd00:2021:1111:8000::1")!, IpAddress("fd00:2021:1111:8000::2")!,
                                    IpAddress("fd00:2021:1111:8000::3")!])
        return nat
    }

    /// A flow whose port had to change (another proxy of the same domain holds it), the host's "port
    /// unreachable" for it, and that error after translation.
    func icmpErrorRoundTrip(_ family: (client: IpAddress, proxy: IpAddress, real: IpAddress), secondProxy: IpAddress) throws -> [IpPacket] {
        var nat = try gateway()
        var first = try IpPacket.udp(source: family.client, destination: secondProxy, sourcePort: 40000, destinationPort: 7777, payload: [1])
        _ = try nat.outbound(&first, now: now)
        var flow = try IpPacket.udp(source: family.client, destination: family.proxy, sourcePort: 40000, destinationPort: 7777, payload: [1, 2, 3])
        let sent = flow
        _ = try nat.outbound(&flow, now: now)
        #expect(flow.udp?.sourcePort == 40001)
        var error = try IpPacket.icmpDestinationUnreachableNetwork(for: flow)
        let fromHost = error
        #expect(try nat.inbound(&error, now: now) == .translated)
        #expect(error.source == family.proxy && error.destination == family.client && error.ttl == 20)
        let quoted = try #require(try error.icmpError()).failedPacket
        #expect(quoted.destination == family.proxy && quoted.sourceKey == .udp(40000) && quoted.source == family.client,
                "the Client sees its own packet quoted")
        #expect(try nat.inbound(&error, now: now) == .noSession, "an error about a non-NAT packet passes unchanged")
        return [sent, first, flow, fromHost, error]
    }

    @Test func icmpErrorsFromTheResolvedHostComeBackFromTheProxy() throws {
        _ = try icmpErrorRoundTrip(Self.v4, secondProxy: IpAddress("100.96.0.2")!)
        _ = try icmpErrorRoundTrip(Self.v6, secondProxy: IpAddress("fd00:2021:1111:8000::1")!)
    }

    @Test func icmpErrorForAnExpiredSessionIsDropped() throws {
        var nat = try gateway()
        var flow = try IpPacket.udp(source: Self.v4.client, destination: Self.v4.proxy, sourcePort: 5000, destinationPort: 7777, payload: [1])
        _ = try nat.outbound(&flow, now: now)
        nat.expire(now: now + .seconds(61))
        var error = try IpPacket.icmpDestinationUnreachableNetwork(for: flow)
        #expect(try nat.inbound(&error, now: now + .seconds(62)) == .expiredSession)
    }

    @Test func tsharkValidatesEveryChecksumAfterTranslation() throws {
        var nat = try gateway()
        var packets: [IpPacket] = []
        for family in [Self.v4, Self.v6] {
            var syn = try IpPacket.tcp(source: family.client, destination: family.proxy, sourcePort: 33000, destinationPort: 443,
                                       sequenceNumber: 1, flags: .syn, payload: [UInt8]())
            var udp = try IpPacket.udp(source: family.client, destination: family.proxy, sourcePort: 33001, destinationPort: 7777, payload: Array("hello".utf8))
            var ping = try IpPacket.icmpEchoRequest(source: family.client, destination: family.proxy, identifier: 9, sequence: 1, payload: [UInt8](0..<32))
            var synAck = try IpPacket.tcp(source: family.real, destination: family.client, sourcePort: 443, destinationPort: 33000,
                                          sequenceNumber: 100, acknowledgmentNumber: 2, flags: [.syn, .ack], payload: [UInt8]())
            var answer = try IpPacket.udp(source: family.real, destination: family.client, sourcePort: 7777, destinationPort: 33001, payload: Array("world".utf8))
            var pong = try IpPacket.icmpEchoReply(source: family.real, destination: family.client, identifier: 9, sequence: 1, payload: [UInt8](0..<32))
            for index in [0, 1, 2] {
                switch index {
                case 0: _ = try nat.outbound(&syn, now: now); #expect(try nat.inbound(&synAck, now: now) == .translated)
                case 1: _ = try nat.outbound(&udp, now: now); #expect(try nat.inbound(&answer, now: now) == .translated)
                default: _ = try nat.outbound(&ping, now: now); #expect(try nat.inbound(&pong, now: now) == .translated)
                }
            }
            packets += [syn, synAck, udp, answer, ping, pong]
        }
        packets += try icmpErrorRoundTrip(Self.v4, secondProxy: IpAddress("100.96.0.2")!)
        packets += try icmpErrorRoundTrip(Self.v6, secondProxy: IpAddress("fd00:2021:1111:8000::1")!)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-nat-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .raw)
        for (index, packet) in packets.enumerated() {
            try packet.withUnsafeBytes { (bytes) throws(PcapError) in try writer.write(bytes, timestampNanoseconds: Int64(index) * 1000) }
        }
        writer.close()
        let fields = ["_ws.malformed", "ip.checksum.status", "tcp.checksum.status", "udp.checksum.status",
                      "icmp.checksum.status", "icmpv6.checksum.status", "ip.src", "ipv6.src"]
        let rows = try Tshark.fields(fields, of: path, options: Tshark.checksumValidation + ["-o", "tcp.analyze_sequence_numbers:FALSE"])
        #expect(rows.count == packets.count)
        for (index, (packet, row)) in zip(packets, rows).enumerated() {
            #expect(row["_ws.malformed"]?.isEmpty ?? true, "frame \(index + 1) malformed")
            let own = switch packet.transport {
            case .tcp: "tcp.checksum.status"
            case .udp: "udp.checksum.status"
            case .icmpv4: "icmp.checksum.status"
            default: "icmpv6.checksum.status"
            }
            #expect(row[own]?.split(separator: ",").first == "1", "frame \(index + 1): \(own) = \(row[own] ?? "")")
            if packet.version == .v4 { #expect(row["ip.checksum.status"]?.split(separator: ",").first == "1", "frame \(index + 1) IPv4 header") }
            let source = row[packet.version == .v4 ? "ip.src" : "ipv6.src"]?.split(separator: ",").first.map(String.init)
            #expect(source == packet.source.description, "frame \(index + 1): tshark reads the source we wrote")
        }
    }
}
