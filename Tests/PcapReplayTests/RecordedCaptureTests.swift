import Foundation
import IpPacket
import PcapFile
import Replay
import TestSupport
import Testing

/// Captures the tests record themselves in network namespaces with tcpdump (root), in every link type the
/// replay reads: the same kernel traffic must get the same verdicts.
@Suite(.serialized, .offPool) struct RecordedCaptureTests {
    /// The verdicts that do not depend on the kernel's timing (how many segments an HTTP exchange takes,
    /// neighbour discovery), and, counted by tshark in the capture itself, one verdict per packet each way.
    private func expectDemoVerdicts(_ report: TunnelReport, capture: String, _ label: String) async throws {
        #expect(report.verdict(.routed).packets >= 9, "\(label)")
        #expect(report.verdict(.natTranslated).packets >= 5, "\(label)")
        #expect(report.verdict(.stubResolver).packets == 4, "\(label)")
        #expect(report.verdict(.filtered).packets == 1, "\(label)")
        #expect(report.verdict(.notAResource).packets >= 2, "\(label)")
        #expect(report.verdict(ClientVerdict.unaccounted).packets == 0, "\(label)")
        #expect(report.verdict(ResourceVerdict.unaccounted).packets == 0, "\(label)")
        #expect(report.parser.rejected == 0, "\(label)")
        #expect(report.pipelineErrors == 0, "\(label)")
        let fromClient = try await ReplayFixtures.tsharkFields(["frame.number"], of: capture, filter: "ip.src == 100.64.0.2 || ipv6.src == fd00:2021:1111::2").count
        let toClient = try await ReplayFixtures.tsharkFields(["frame.number"], of: capture, filter: "ip.dst == 100.64.0.2 || ipv6.dst == fd00:2021:1111::2").count
        #expect(report.clientToResource.values.reduce(0) { $0 + $1.packets } == fromClient, "\(label)")
        #expect(report.resourceToClient.values.reduce(0) { $0 + $1.packets } == toClient, "\(label)")
        #expect(report.verdict(.delivered) == report.clientTun["replies"], "\(label)")
    }

    @Test(arguments: [("ethernet", [String]()), ("linux-sll", ["-i", "any", "-y", "LINUX_SLL"]), ("linux-sll2", ["-i", "any", "-y", "LINUX_SLL2"])])
    func kernelTrafficRecordedNowReplaysWithTheSameVerdicts(_ label: String, _ tcpdumpOptions: [String]) async throws {
        ReplayFixtures.requireRoot()
        let directory = try ReplayFixtures.temporaryDirectory(label)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let capture = directory + "/capture.pcap"
        try await ReplayFixtures.record("record-replay-demo", [capture] + tcpdumpOptions)
        let report = try ReplayFixtures.replay(capture, output: directory + "/out")
        try await expectDemoVerdicts(report, capture: capture, label)
        for name in ["wire", "gateway-egress", "client-tun"] {
            #expect(try await ReplayFixtures.tsharkComplaints(directory + "/out/\(name).pcap").isEmpty, "\(label) \(name)")
        }
    }

    @Test func rawIpLoopbackPcapngAndMixedLinkTypesCarryTheSamePackets() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("linktypes")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reader = try PcapReader(path: ReplayFixtures.capture)
        let raw = try PcapWriter(path: directory + "/raw.pcap", linkType: .raw)
        let null = try PcapWriter(path: directory + "/null.pcap", linkType: .null)
        // Odd frames as Ethernet, even ones as raw IP: mergecap puts them back in order in one pcapng file
        // with two interfaces of different link types, which libpcap would refuse to read.
        let oddEthernet = try PcapWriter(path: directory + "/odd.pcap", linkType: .ethernet)
        let evenRaw = try PcapWriter(path: directory + "/even.pcap", linkType: .raw)
        while let record = try reader.next() {
            guard let ip = LinkLayer.ipPacket(in: record.data, linkType: record.linkType) else { continue }
            try raw.write(ip, timestampNanoseconds: record.timestampNanoseconds)
            if record.number % 2 == 1 {
                try oddEthernet.write(record.data, timestampNanoseconds: record.timestampNanoseconds)
            } else {
                try evenRaw.write(ip, timestampNanoseconds: record.timestampNanoseconds)
            }
            // BSD loopback: the address family in host byte order (2 = IPv4, 10 = Linux's IPv6… BSD uses 24/28/30).
            let family: UInt32 = ip.first.map { $0 >> 4 == 4 ? 2 : 24 } ?? 0
            try null.write(withUnsafeBytes(of: family) { Array($0) } + Array(ip), timestampNanoseconds: record.timestampNanoseconds)
        }
        for writer in [raw, null, oddEthernet, evenRaw] { writer.close() }
        try await ReplayFixtures.shell(["editcap", "-F", "pcapng", ReplayFixtures.capture, directory + "/demo.pcapng"])
        try await ReplayFixtures.shell(["mergecap", "-F", "pcapng", "-w", directory + "/mixed.pcapng", directory + "/odd.pcap", directory + "/even.pcap"])
        let bundled = try ReplayFixtures.replay(ReplayFixtures.capture)
        for name in ["raw.pcap", "null.pcap", "demo.pcapng", "mixed.pcapng"] {
            let report = try ReplayFixtures.replay(directory + "/" + name)
            #expect(report.clientToResource == bundled.clientToResource, "\(name)")
            #expect(report.resourceToClient == bundled.resourceToClient, "\(name)")
            #expect(report.parser.parsed == bundled.parser.parsed, "\(name)")
        }
        #expect(try ReplayFixtures.replay(directory + "/mixed.pcapng").capture.linkType == "EN10MB+RAW")
    }

    /// www.wiki.example (a DNS resource) resolved to 10.20.0.5, inside the CIDR resource 10.20.0.0/16 whose filters
    /// allow tcp/80 and ICMP. The fetch by name goes to the DNS resource; the fetches that name the address, and
    /// the ping, which names nothing, go to the CIDR resource, whose filters refuse port 8080 (sent to the DNS
    /// resource, that connection went through unfiltered). `--prefer dns` moves only the ping.
    @Test func aFlowToAnAddressOfBothADnsAndACidrResourceGoesWhereItsFirstBytesSay() async throws {
        ReplayFixtures.requireRoot()
        let directory = try ReplayFixtures.temporaryDirectory("ambiguous")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let capture = directory + "/capture.pcap"
        try await ReplayFixtures.record("record-replay-demo", [capture], environment: ["TRAFFIC": "ambiguous"])
        let fromClient = "ip.src == 100.64.0.2 && ip.dst == 10.20.0.5"
        let byName = try #require(try await ReplayFixtures.tsharkFields(["tcp.srcport"], of: capture, filter: "http.host == \"www.wiki.example\"").first?["tcp.srcport"])
        let byNamePackets = try await ReplayFixtures.tsharkFields(["frame.number"], of: capture, filter: "\(fromClient) && tcp.srcport == \(byName)").count
        let to8080 = try await ReplayFixtures.tsharkFields(["frame.number"], of: capture, filter: "\(fromClient) && tcp.dstport == 8080").count
        let byAddress = try await ReplayFixtures.tsharkFields(["frame.number"], of: capture, filter: "\(fromClient) && tcp.dstport == 80 && tcp.srcport != \(byName)").count
        let pings = try await ReplayFixtures.tsharkFields(["frame.number"], of: capture, filter: "\(fromClient) && icmp.type == 8").count

        let report = try ReplayFixtures.replay(capture)
        #expect(report.ambiguousFlowCount == 4)
        let decisions = Dictionary(report.ambiguousFlows.map { ($0.flow, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(decisions["tcp 100.64.0.2:\(byName) → 10.20.0.5:80"]?.replayedAs == .dns)
        #expect(decisions["tcp 100.64.0.2:\(byName) → 10.20.0.5:80"]?.reason.contains("HTTP Host www.wiki.example") == true)
        #expect(report.ambiguousFlows.filter { $0.flow.hasSuffix(":8080") }.map(\.replayedAs) == [.cidr])
        #expect(decisions["icmp 100.64.0.2 → 10.20.0.5"]?.replayedAs == .cidr)
        #expect(report.ambiguousFlows.allSatisfy { $0.dnsName == "www.wiki.example" && $0.cidrResource == "10.20.0.0/16" })
        #expect(report.verdict(.natTranslated).packets == byNamePackets)
        #expect(report.verdict(.filtered).packets == to8080)
        #expect(report.verdict(.routed).packets == byAddress + pings)
        #expect(report.pipelineErrors == 0)

        var options = TunnelReplay.Options(scenario: try ReplayFixtures.scenario)
        options.prefer = .dns
        let preferringDns = try TunnelReplay(path: capture, options: options).run()
        #expect(preferringDns.ambiguousFlows.first { $0.flow.hasPrefix("icmp") }?.replayedAs == .dns)
        #expect(preferringDns.verdict(.natTranslated).packets == byNamePackets + pings)
        #expect(preferringDns.verdict(.filtered).packets == to8080)
        #expect(preferringDns.verdict(.routed).packets == byAddress)
    }

    @Test func aClientRecordedOutsideTheTunnelRangesIsFoundByItsResourcesAndTranslated() throws {
        let directory = try ReplayFixtures.temporaryDirectory("lan")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lan = IpAddress("192.168.77.5")!, tunnel = IpAddress("100.64.0.2")!
        let reader = try PcapReader(path: ReplayFixtures.capture)
        let writer = try PcapWriter(path: directory + "/lan.pcap", linkType: .raw)
        while let record = try reader.next() {
            guard let ip = LinkLayer.ipPacket(in: record.data, linkType: reader.linkType) else { continue }
            var packet = try IpPacket(copying: ip)
            if packet.source == tunnel { try packet.setSource(lan) }
            if packet.destination == tunnel { try packet.setDestination(lan) }
            try writer.write(packet.bytes, timestampNanoseconds: record.timestampNanoseconds)
        }
        writer.close()
        let report = try ReplayFixtures.replay(directory + "/lan.pcap")
        let bundled = try ReplayFixtures.replay(ReplayFixtures.capture)
        #expect(report.clientAddresses.first == "192.168.77.5 → 100.64.0.2")
        #expect(report.clientToResource == bundled.clientToResource)
        #expect(report.resourceToClient == bundled.resourceToClient)
    }
}
