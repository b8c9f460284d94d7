import IpPacket
import PcapFile
import TestSupport
import Testing

/// Packets the Linux kernel produced (recorded by `scripts/fixtures/record-kernel-traffic`), parsed by us and
/// dissected by tshark: every field we read must agree with what tshark reads.
@Suite(.offPool) struct KernelCaptureTests {
    struct Frame {
        var number: Int
        var packet: Result<IpPacket, IpPacketError>?
    }

    static let fields = [
        "frame.number", "ip.version", "ipv6.version", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
        "ip.proto", "ipv6.nxt", "ipv6.hopopts.nxt", "ip.ttl", "ipv6.hlim", "ip.len", "ip.id", "ip.checksum", "ip.hdr_len",
        "ip.dsfield.ecn", "ipv6.tclass.ecn", "ipv6.plen", "ipv6.flow", "ip.flags.mf", "ip.frag_offset",
        "ipv6.fraghdr.offset", "ipv6.fraghdr.more",
        "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.hdr_len", "tcp.flags", "tcp.window_size_value",
        "tcp.checksum", "tcp.len", "tcp.checksum.status",
        "udp.srcport", "udp.dstport", "udp.length", "udp.checksum", "udp.checksum.status",
        "icmp.type", "icmp.code", "icmp.checksum", "icmp.checksum.status", "icmp.ident",
        "icmpv6.type", "icmpv6.code", "icmpv6.checksum", "icmpv6.checksum.status", "icmpv6.echo.identifier",
        "_ws.expert.message",
    ]

    let frames: [Frame]
    let dissected: [[String: String]]

    init() throws {
        let reader = try PcapReader(path: Fixtures.kernelTraffic)
        var frames: [Frame] = []
        while let record = try reader.next() {
            let packet = LinkLayer.ipPacket(in: record.data, linkType: reader.linkType).map { bytes in
                Result { () throws(IpPacketError) in try IpPacket(copying: bytes) }
            }
            frames.append(Frame(number: record.number, packet: packet))
        }
        self.frames = frames
        dissected = try Tshark.fields(Self.fields, of: Fixtures.kernelTraffic, options: Tshark.checksumValidation)
    }

    @Test func captureHoldsTheTrafficItWasRecordedFor() {
        #expect(frames.count == dissected.count)
        let parsed = frames.compactMap { try? $0.packet?.get() }
        #expect(parsed.contains { $0.version == .v4 && $0.isTcp && $0.tcp?.flags.contains(.syn) == true })
        #expect(parsed.contains { $0.version == .v6 && $0.isTcp && $0.tcp?.flags.contains(.syn) == true })
        #expect(parsed.contains { $0.version == .v4 && $0.udp?.destinationPort == 53 })
        #expect(parsed.contains { $0.version == .v6 && $0.udp?.sourcePort == 53 })
        #expect(parsed.contains { $0.icmpv4Message.map { if case .echoRequest = $0 { true } else { false } } == true })
        #expect(parsed.contains { $0.icmpv6Message.map { if case .echoReply = $0 { true } else { false } } == true })
        #expect(parsed.filter { (try? $0.icmpError()) != nil }.count == 2)
        #expect(parsed.contains { ($0.ipv6Header?.extensionHeadersRange.count ?? 0) > 0 }, "MLD carries hop-by-hop")
    }

    /// Every IP frame tshark dissects parses, except exactly the ones a strict rule forbids.
    @Test func everyFrameParsesUnlessAStrictRuleForbidsIt() throws {
        for (frame, row) in zip(frames, dissected) {
            let hasIp = !(row["ip.version"] ?? "").isEmpty || !(row["ipv6.version"] ?? "").isEmpty
            guard let result = frame.packet else {
                #expect(!hasIp, "frame \(frame.number): tshark sees IP that we did not find")
                continue
            }
            #expect(hasIp, "frame \(frame.number)")
            switch result {
            case .success:
                #expect(row["ip.flags.mf"] != "1" && row["ipv6.fraghdr.more"]?.hasPrefix("1") != true,
                        "frame \(frame.number) is a fragment and must be rejected")
            case .failure(let error):
                let isFragment = row["ip.flags.mf"] == "1" || !(row["ip.frag_offset"] ?? "0").allSatisfy { $0 == "0" }
                    || !(row["ipv6.fraghdr.offset"] ?? "").isEmpty
                switch error.reason {
                case .tooLarge(let length): #expect(length > 1280 && isFragment, "frame \(frame.number)")
                case .fragmented: #expect(isFragment, "frame \(frame.number): \(error)")
                default: Issue.record("frame \(frame.number) rejected for no reason tshark sees: \(error)")
                }
            }
        }
    }

    @Test func ipHeaderFieldsAgreeWithTshark() throws {
        for (frame, row) in zip(frames, dissected) {
            guard let packet = try? frame.packet?.get() else { continue }
            let at = "frame \(frame.number)"
            if let header = packet.ipv4Header {
                #expect(first(row["ip.src"]) == packet.source.description, "\(at)")
                #expect(first(row["ip.dst"]) == packet.destination.description, "\(at)")
                #expect(first(row["ip.proto"]).flatMap(number) == UInt64(packet.nextHeader), "\(at)")
                #expect(first(row["ip.ttl"]).flatMap(number) == UInt64(packet.ttl), "\(at)")
                #expect(first(row["ip.len"]).flatMap(number) == UInt64(header.totalLength), "\(at)")
                #expect(first(row["ip.id"]).flatMap(number) == UInt64(header.identification), "\(at)")
                #expect(first(row["ip.checksum"]).flatMap(number) == UInt64(header.checksum), "\(at)")
                #expect(first(row["ip.hdr_len"]).flatMap(number) == UInt64(header.headerLength), "\(at)")
                #expect(first(row["ip.dsfield.ecn"]).flatMap(number) == UInt64(packet.ecn.rawValue), "\(at)")
            } else if let header = packet.ipv6Header {
                #expect(first(row["ipv6.src"]) == packet.source.description, "\(at)")
                #expect(first(row["ipv6.dst"]) == packet.destination.description, "\(at)")
                #expect(first(row["ipv6.hlim"]).flatMap(number) == UInt64(packet.ttl), "\(at)")
                #expect(first(row["ipv6.plen"]).flatMap(number) == UInt64(header.payloadLength), "\(at)")
                #expect(first(row["ipv6.flow"]).flatMap(number) == UInt64(header.flowLabel), "\(at)")
                #expect(first(row["ipv6.tclass.ecn"]).flatMap(number) == UInt64(packet.ecn.rawValue), "\(at)")
                #expect(first(row["ipv6.nxt"]).flatMap(number) == UInt64(header.firstNextHeader), "\(at)")
                if !header.extensionHeadersRange.isEmpty {  // the capture's only extension header is hop-by-hop
                    #expect(first(row["ipv6.hopopts.nxt"]).flatMap(number) == UInt64(packet.nextHeader), "\(at)")
                }
            }
        }
    }

    @Test func transportFieldsAgreeWithTshark() throws {
        for (frame, row) in zip(frames, dissected) {
            guard let packet = try? frame.packet?.get() else { continue }
            let at = "frame \(frame.number)"
            if let tcp = packet.tcp {
                #expect(first(row["tcp.srcport"]).flatMap(number) == UInt64(tcp.sourcePort), "\(at)")
                #expect(first(row["tcp.dstport"]).flatMap(number) == UInt64(tcp.destinationPort), "\(at)")
                #expect(first(row["tcp.seq_raw"]).flatMap(number) == UInt64(tcp.sequenceNumber), "\(at)")
                #expect(first(row["tcp.ack_raw"]).flatMap(number) == UInt64(tcp.acknowledgmentNumber), "\(at)")
                #expect(first(row["tcp.hdr_len"]).flatMap(number) == UInt64(tcp.headerLength), "\(at)")
                #expect(first(row["tcp.flags"]).flatMap(number).map { $0 & 0xFF } == UInt64(tcp.flags.rawValue), "\(at)")
                #expect(first(row["tcp.window_size_value"]).flatMap(number) == UInt64(tcp.window), "\(at)")
                #expect(first(row["tcp.checksum"]).flatMap(number) == UInt64(tcp.checksum), "\(at)")
                #expect(first(row["tcp.len"]).flatMap(number) == UInt64(tcp.payloadRange.count), "\(at)")
                #expect(packet.layer4PayloadCount == tcp.payloadRange.count, "\(at)")
            }
            if let udp = packet.udp {
                #expect(first(row["udp.srcport"]).flatMap(number) == UInt64(udp.sourcePort), "\(at)")
                #expect(first(row["udp.dstport"]).flatMap(number) == UInt64(udp.destinationPort), "\(at)")
                #expect(first(row["udp.length"]).flatMap(number) == UInt64(udp.length), "\(at)")
                #expect(first(row["udp.checksum"]).flatMap(number) == UInt64(udp.checksum), "\(at)")
            }
            if let icmp = packet.icmp {
                let family = packet.version == .v4 ? "icmp" : "icmpv6"
                #expect(first(row["\(family).type"]).flatMap(number) == UInt64(icmp.type), "\(at)")
                #expect(first(row["\(family).code"]).flatMap(number) == UInt64(icmp.code), "\(at)")
                #expect(first(row["\(family).checksum"]).flatMap(number) == UInt64(icmp.checksum), "\(at)")
                let identifier = first(row[packet.version == .v4 ? "icmp.ident" : "icmpv6.echo.identifier"])
                if let key = try? packet.sourceKey {
                    #expect(identifier.flatMap(number) == UInt64(key.value), "\(at)")
                }
            }
        }
    }

    /// The kernel left TCP and UDP checksums to the (veth) offload, so tshark finds them bad and says
    /// what they should be: our verdict and our computed value must match tshark's on every packet.
    @Test func checksumVerdictsAndValuesAgreeWithTshark() throws {
        var bad = 0
        for (frame, row) in zip(frames, dissected) {
            guard let packet = try? frame.packet?.get() else { continue }
            let at = "frame \(frame.number)"
            // Only this packet's own layers: in an ICMP error tshark also checks the quoted packet.
            let transportStatus = switch packet.transport {
            case .tcp: "tcp.checksum.status"
            case .udp: "udp.checksum.status"
            case .icmpv4: "icmp.checksum.status"
            case .icmpv6: "icmpv6.checksum.status"
            case .other: "none"
            }
            let statuses = ["ip.checksum.status", transportStatus].compactMap { first(row[$0]) }
            let tsharkSaysValid = !statuses.isEmpty && statuses.allSatisfy { $0 == "1" }
            #expect(packet.hasValidChecksums == tsharkSaysValid, "\(at): statuses \(statuses)")
            guard !packet.hasValidChecksums else { continue }
            bad += 1
            let expected = try #require(row["_ws.expert.message"]?.firstMatch(of: /should be 0x([0-9a-f]{4})/)?.1)
            #expect(UInt16(expected, radix: 16) == packet.expectedTransportChecksum, "\(at)")
            var fixed = packet
            fixed.computeChecksums()
            #expect(fixed.hasValidChecksums, "\(at)")
        }
        #expect(bad > 10, "the capture holds offloaded checksums to compare")
    }

    /// The kernel's ICMP port-unreachable errors quote our DNS queries: we read the quoted addresses and
    /// ports as tshark does (its second occurrence of each field is the quoted packet's).
    @Test func icmpErrorsQuoteWhatTsharkSees() throws {
        var seen = 0
        for (frame, row) in zip(frames, dissected) {
            guard let packet = try? frame.packet?.get(), let error = try? packet.icmpError() else { continue }
            seen += 1
            let family = packet.version == .v4 ? "ip" : "ipv6"
            let failed = error.failedPacket
            #expect(second(row["\(family).src"]) == failed.source.description)
            #expect(second(row["\(family).dst"]) == failed.destination.description)
            #expect(first(row["udp.srcport"]).flatMap(number) == UInt64(failed.sourceKey.value))
            #expect(first(row["udp.dstport"]).flatMap(number) == UInt64(failed.destinationKey.value))
            #expect(failed.destinationKey == .udp(5300))
            #expect(error.kind == (packet.version == .v4 ? .v4Unreachable(code: 3) : .v6Unreachable(code: 4)))
        }
        #expect(seen == 2)
    }

    /// ICMP types that are neither echo nor a understood error (MLD reports, neighbour discovery) are an
    /// error for `icmpError()`, as in Firezone; echo requests and replies are not ICMP errors.
    @Test func icmpErrorRejectsOtherIcmpTypes() throws {
        let parsed = frames.compactMap { try? $0.packet?.get() }
        let mldReport = try #require(parsed.first { $0.icmp?.type == 143 })
        #expect(throws: IpPacketError(.unsupportedIcmpMessage(type: 143, code: 0), context: mldReport.errorContextForTest)) {
            try mldReport.icmpError()
        }
        let echo = try #require(parsed.first { $0.icmp?.type == 128 })
        #expect(try echo.icmpError() == nil)
    }

    private func first(_ value: String?) -> String? {
        value?.split(separator: ",").first.map(String.init)
    }

    private func second(_ value: String?) -> String? {
        value.flatMap { $0.split(separator: ",").dropFirst().first.map(String.init) }
    }

    private func last(_ value: String?) -> String? {
        value?.split(separator: ",").last.map(String.init)
    }
}
