import Foundation
@testable import Replay
import TestSupport
import Testing

/// The README's capture (Fixtures/captures/replay-demo.pcap, recorded by scripts/fixtures/record-replay-demo):
/// every verdict counted exactly, and every output pcap read by tshark without a complaint.
@Suite(.offPool) struct BundledCaptureTests {
    @Test func everyPacketGetsTheVerdictItsTrafficCallsFor() throws {
        let report = try ReplayFixtures.replay(ReplayFixtures.capture)
        #expect(report.capture.frames == 61)
        #expect(report.capture.framesWithoutIp == 8)     // ARP
        #expect(report.parser.parsed == 53)
        #expect(report.parser.rejected == 0)
        #expect(report.clientAddresses == ["100.64.0.2", "fd00:2021:1111::2"])
        // Three pings and an HTTP exchange (6 segments) to the CIDR resource, one IPv6 ping.
        #expect(report.verdict(.routed) == Tally(packets: 10, bytes: 750))
        // The HTTP fetch from app.wiki.example: sent to its proxy IP, translated back by the gateway.
        #expect(report.verdict(.natTranslated) == Tally(packets: 6, bytes: 400))
        // dig's A query, curl's A and AAAA, and the recursed example.org.
        #expect(report.verdict(.stubResolver) == Tally(packets: 4, bytes: 289))
        // The SYN to port 22, which the filters (tcp/80, icmp) refuse.
        #expect(report.verdict(.filtered) == Tally(packets: 1, bytes: 60))
        // Two pings to 198.51.100.7 and a neighbour solicitation to a multicast group.
        #expect(report.verdict(.notAResource) == Tally(packets: 3, bytes: 240))
        #expect(report.verdict(.droppedByClient) == Tally())
        #expect(report.verdict(ClientVerdict.droppedByGateway) == Tally())
        #expect(report.verdict(ClientVerdict.unaccounted) == Tally())

        #expect(report.verdict(.delivered) == Tally(packets: 16, bytes: 1263))
        #expect(report.verdict(.dnsAnswerUsed) == Tally(packets: 4, bytes: 291))
        // The RST from port 22, the two echo replies from 198.51.100.7, the neighbour advertisement.
        #expect(report.verdict(.noRequest) == Tally(packets: 4, bytes: 280))
        #expect(report.verdict(ResourceVerdict.unaccounted) == Tally())
        #expect(report.otherTraffic == Tally(packets: 5, bytes: 416))

        #expect(report.clientTun["replies"] == Tally(packets: 16, bytes: 1263))
        #expect(report.clientTun["stub-answers"]?.packets == 4)
        #expect(report.clientTun["icmp-errors"]?.packets == 1)
        #expect(report.gatewayDrops == ["prohibited": 1])
        #expect(report.wire.path == "direct")
        #expect(report.pipelineErrors == 0)
        #expect(report.error == nil)
    }

    @Test func tsharkReadsEveryOutputPcapWithValidChecksums() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("outputs")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let report = try ReplayFixtures.replay(ReplayFixtures.capture, output: directory)
        for name in ["wire", "gateway-egress", "client-tun"] {
            let path = try #require(report.outputs[name])
            #expect(try await ReplayFixtures.tsharkComplaints(path).isEmpty, "\(name)")
        }
        // The wire carries WireGuard: tshark decodes a handshake and data, with the same counts as the report.
        let types = try await ReplayFixtures.tsharkFields(["wg.type"], of: directory + "/wire.pcap", filter: "wg").map { $0["wg.type"] ?? "" }
        #expect(types.filter { $0 == "1" }.count >= 1)
        #expect(types.filter { $0 == "2" }.count >= 1)
        #expect(types.filter { $0 == "4" }.count > 10)
        #expect(types.count == report.wire.wireGuard)
        // The gateway's egress is the captured requests with the DNS resource's real address restored.
        let egress = try await ReplayFixtures.tsharkFields(["ip.dst", "ipv6.dst"], of: directory + "/gateway-egress.pcap")
        #expect(egress.count == 16)
        #expect(egress.filter { $0["ip.dst"] == "10.30.0.5" }.count == 6)
        #expect(egress.filter { $0["ip.dst"] == "10.20.0.10" }.count == 9)
        // The client saw the wiki's answers from its proxy IP, and the filter's ICMP "prohibited".
        let back = try await ReplayFixtures.tsharkFields(["ip.src", "icmp.type", "icmp.code"], of: directory + "/client-tun.pcap")
        #expect(back.filter { $0["ip.src"]?.hasPrefix("100.96.") == true }.count == 6)
        #expect(back.contains { $0["icmp.type"] == "3" && $0["icmp.code"] == "13" })
    }

    @Test func theToolPrintsTheSameReportAsJsonAndExitsZero() async throws {
        let result = try await ReplayFixtures.runTool([ReplayFixtures.capture, "--resources", ReplayFixtures.resources, "--no-pcaps", "--json"])
        #expect(result.status == 0, "\(result.errors)")
        let report = try JSONDecoder().decode(TunnelReport.self, from: Data(result.output.utf8))
        #expect(report.verdict(.routed).packets == 10)
        #expect(report.verdict(.filtered).packets == 1)
        #expect(report.verdict(.natTranslated).packets == 6)
    }

    @Test func withoutAResourcesFileEverythingGoesThroughTheInternetResource() throws {
        let report = try TunnelReplay(path: ReplayFixtures.capture, options: .init(scenario: .internet)).run()
        // No upstream resolvers, so no DNS sentinel: the queries to 100.100.111.1 are ordinary traffic, and
        // everything the client sent (the multicast neighbour solicitation too: ::/0) goes through the gateway.
        #expect(report.verdict(.routed).packets == 24)
        #expect(report.verdict(.natTranslated).packets == 0)
        #expect(report.verdict(.filtered).packets == 0)
        #expect(report.verdict(.stubResolver).packets == 0)
        #expect(report.verdict(.notAResource).packets == 0)
        #expect(report.verdict(.delivered).packets == 23)   // every reply but the neighbour advertisement
        #expect(report.verdict(ClientVerdict.unaccounted).packets == 0)
    }
}

/// What a replay holds is gone once the replay is: the world's queue of pending actions used to capture the
/// world, so every replay leaked its client, gateway and relay (Fuzz/PcapReplay's leak check found it).
@Suite struct ReplayLifetimeTests {
    @Test func aFinishedReplayFreesItsWorld() throws {
        weak var world: ReplayWorld?
        do {
            let replay = try TunnelReplay(path: ReplayFixtures.capture, options: .init(scenario: ReplayFixtures.scenario))
            _ = try replay.run()
            world = replay.world
            #expect(world != nil)
        }
        #expect(world == nil, "the replay's world outlived it")
    }
}

@Suite struct TunnelReportTests {
    /// Every pipeline error is counted; the report lists the first 20 so a broken replay stays readable.
    @Test func pipelineErrorsAreAllCountedAndTheFirstTwentyListed() {
        var report = TunnelReport()
        for index in 1...25 { report.addPipelineError("gateway at +\(index) s: unknown connection") }
        #expect(report.pipelineErrors == 25)
        #expect(report.pipelineErrorMessages.count == 20)
        #expect(report.pipelineErrorMessages.last == "gateway at +20 s: unknown connection")
        #expect(report.text.contains("Pipeline errors: 25\n  gateway at +1 s: unknown connection"))
    }
}
