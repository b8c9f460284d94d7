import Foundation
import IpPacket
import PcapFile
import TestSupport
import Testing

/// Packets we build or mutate, written to a capture, are accepted by tshark with checksum validation on:
/// no malformed packet, no bad checksum, no warning, and the fields tshark reads are the ones we wrote.
@Suite(.offPool) struct TsharkAcceptsOurPacketsTests {
    static let v4Client = IpAddress("100.64.0.1")!
    static let v4Resource = IpAddress("192.0.2.10")!
    static let v6Client = IpAddress("fd00:2021:1111::1")!
    static let v6Resource = IpAddress("2001:db8::10")!
    /// A DNS query for `app.example.com` A, so tshark's DNS dissector has a well-formed message to read.
    static let dnsQuery: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        + [3] + Array("app".utf8) + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0, 0, 1, 0, 1]
    static let tcpOptions: [UInt8] = [0x02, 0x04, 0x05, 0x00, 0x01, 0x03, 0x03, 0x07]  // MSS 1280, NOP, window scale 7

    /// Built packets, then NAT-translated, ECN-marked and TTL-changed copies, then ICMP errors for them.
    static func packets() throws -> [IpPacket] {
        var packets: [IpPacket] = []
        for (client, resource) in [(v4Client, v4Resource), (v6Client, v6Resource)] {
            packets.append(try .udp(source: client, destination: resource, sourcePort: 40000, destinationPort: 53,
                                    payload: dnsQuery))
            packets.append(try .tcp(source: client, destination: resource, sourcePort: 40001, destinationPort: 443,
                                    sequenceNumber: 1000, flags: .syn, options: tcpOptions, payload: [UInt8]()))
            packets.append(try .tcp(source: resource, destination: client, sourcePort: 443, destinationPort: 40001,
                                    sequenceNumber: 5000, acknowledgmentNumber: 1001, flags: [.ack, .psh],
                                    payload: [UInt8](repeating: 0x61, count: 1000)))
            packets.append(try .icmpEchoRequest(source: client, destination: resource, identifier: 7, sequence: 1,
                                                payload: [UInt8](0..<56)))
            packets.append(try .icmpEchoReply(source: resource, destination: client, identifier: 7, sequence: 1,
                                              payload: [UInt8](0..<56)))
        }
        let built = packets
        for original in built {
            var translated = original
            let proxy = original.version == .v4 ? IpAddress("100.96.0.1")! : IpAddress("fd00:2021:1111:8000::1")!
            try translated.translateDestination(proxy, sourceKey: 61000)
            translated.setEcn(.ect0)
            translated.applyEcnFromTransport(.ce)
            translated.setTtl(63)
            packets.append(translated)
            packets.append(try .icmpDestinationUnreachableProhibited(for: original))
            packets.append(try .icmpDestinationUnreachableNetwork(for: original))
        }
        return packets
    }

    static func write(_ packets: [IpPacket], to path: String) throws {
        let writer = try PcapWriter(path: path, linkType: .raw)
        for (index, packet) in packets.enumerated() {
            try packet.withUnsafeBytes { (bytes) throws(PcapError) in
                try writer.write(bytes, timestampNanoseconds: Int64(index) * 1_000_000)
            }
        }
        writer.close()
    }

    @Test func tsharkFindsNoMalformedPacketBadChecksumOrWarning() throws {
        let packets = try Self.packets()
        let path = Fixtures.temporaryCapture("built")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.write(packets, to: path)

        let rows = try Tshark.fields(
            ["frame.number", "_ws.malformed", "_ws.expert.severity", "_ws.expert.message",
             "ip.checksum.status", "tcp.checksum.status", "udp.checksum.status",
             "icmp.checksum.status", "icmpv6.checksum.status"],
            of: path, options: Tshark.checksumValidation + ["-o", "tcp.analyze_sequence_numbers:FALSE"])
        #expect(rows.count == packets.count)
        for (packet, row) in zip(packets, rows) {
            let frame = row["frame.number"] ?? "?"
            #expect(row["_ws.malformed"]?.isEmpty ?? true, "frame \(frame) is malformed")
            let severities = (row["_ws.expert.severity"] ?? "").split(separator: ",").compactMap { number(String($0)) }
            #expect(severities.allSatisfy { $0 < 0x600000 }, "frame \(frame): \(row["_ws.expert.message"] ?? "")")
            // 1 = good, 0 = bad, 2 = unverified: a quoted packet in an ICMP error is truncated, so tshark
            // cannot verify its transport checksum. Our own layers (the first occurrence) must be good.
            for field in ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status",
                          "icmp.checksum.status", "icmpv6.checksum.status"] {
                let statuses = (row[field] ?? "").split(separator: ",")
                #expect(statuses.allSatisfy { $0 == "1" || $0 == "2" }, "frame \(frame): \(field) = \(row[field] ?? "")")
            }
            let ownTransport = switch packet.transport {
            case .tcp: "tcp.checksum.status"
            case .udp: "udp.checksum.status"
            case .icmpv4: "icmp.checksum.status"
            case .icmpv6: "icmpv6.checksum.status"
            case .other: "ip.checksum.status"
            }
            #expect(row[ownTransport]?.split(separator: ",").first == "1", "frame \(frame): \(ownTransport) verified good")
            if packet.version == .v4 {
                #expect(row["ip.checksum.status"]?.split(separator: ",").first == "1", "frame \(frame): IPv4 header")
            }
        }
    }

    @Test func tsharkReadsTheFieldsWeWrote() throws {
        let packets = try Self.packets()
        let path = Fixtures.temporaryCapture("fields")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.write(packets, to: path)
        let rows = try Tshark.fields(
            ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.ttl", "ipv6.hlim", "ip.dsfield.ecn", "ipv6.tclass.ecn",
             "tcp.srcport", "tcp.dstport", "tcp.options.mss_val", "udp.srcport", "udp.dstport", "icmp.type", "icmp.code",
             "icmpv6.type", "icmpv6.code"],
            of: path)
        for (packet, row) in zip(packets, rows) {
            let family = packet.version == .v4 ? "ip" : "ipv6"
            #expect(row["\(family).src"]?.split(separator: ",").first.map(String.init) == packet.source.description)
            #expect(row["\(family).dst"]?.split(separator: ",").first.map(String.init) == packet.destination.description)
            let ttl = row[packet.version == .v4 ? "ip.ttl" : "ipv6.hlim"]?.split(separator: ",").first
            #expect(ttl.flatMap { UInt8($0) } == packet.ttl)
            let ecn = row["\(family == "ip" ? "ip.dsfield.ecn" : "ipv6.tclass.ecn")"]?.split(separator: ",").first
            #expect(ecn.flatMap { number(String($0)) } == UInt64(packet.ecn.rawValue))
            if let tcp = packet.tcp {
                #expect(row["tcp.srcport"] == String(tcp.sourcePort))
                #expect(row["tcp.dstport"] == String(tcp.destinationPort))
                if tcp.flags.contains(.syn) { #expect(row["tcp.options.mss_val"] == "1280") }
            }
            if let udp = packet.udp {
                #expect(row["udp.srcport"] == String(udp.sourcePort))
                #expect(row["udp.dstport"] == String(udp.destinationPort))
            }
            if let icmp = packet.icmp {
                let prefix = packet.version == .v4 ? "icmp" : "icmpv6"
                #expect(row["\(prefix).type"]?.split(separator: ",").first == Substring(String(icmp.type)))
                #expect(row["\(prefix).code"]?.split(separator: ",").first == Substring(String(icmp.code)))
            }
        }
    }

    /// NAT of an ICMP error's quoted packet: tshark validates the outer ICMP checksum we patched and reads
    /// the quoted destination and port we wrote. (The quoted packet's own checksums stay as quoted.)
    @Test func translatedIcmpErrorsHaveValidOuterChecksums() throws {
        var errors: [IpPacket] = []
        for (client, resource, proxy) in [(Self.v4Client, Self.v4Resource, IpAddress("100.96.0.7")!),
                                          (Self.v6Client, Self.v6Resource, IpAddress("fd00:2021:1111:8000::7")!)] {
            let query = try IpPacket.udp(source: client, destination: resource, sourcePort: 61000, destinationPort: 53,
                                         payload: [UInt8](repeating: 1, count: 20))
            var error = try IpPacket.icmpDestinationUnreachableProhibited(for: query)
            try error.translateFailedPacket(destination: proxy, sourceKeyValue: 40000)
            #expect(try error.icmpError()?.failedPacket.destination == proxy)
            #expect(try error.icmpError()?.failedPacket.sourceKey == .udp(40000))
            errors.append(error)
        }
        let path = Fixtures.temporaryCapture("icmp-nat")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.write(errors, to: path)
        let rows = try Tshark.fields(
            ["icmp.checksum.status", "icmpv6.checksum.status", "ip.dst", "ipv6.dst", "udp.srcport"],
            of: path, options: Tshark.checksumValidation)
        #expect(rows[0]["icmp.checksum.status"] == "1")
        #expect(rows[0]["ip.dst"] == "100.64.0.1,100.96.0.7")
        #expect(rows[0]["udp.srcport"] == "40000")
        #expect(rows[1]["icmpv6.checksum.status"] == "1")
        #expect(rows[1]["ipv6.dst"] == "fd00:2021:1111::1,fd00:2021:1111:8000::7")
        #expect(rows[1]["udp.srcport"] == "40000")
    }
}
