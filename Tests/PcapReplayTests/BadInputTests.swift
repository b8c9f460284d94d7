import Foundation
import PcapFile
import Replay
import TestSupport
import Testing

/// Captures that are damaged or not captures at all: a clear error that says how far the replay got, a
/// report of everything before the damage, and exit codes that tell "bad input" from "usage".
@Suite struct BadInputTests {
    @Test func garbagePacketsAreRejectedOneByOneWithTheirNumberAndReason() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("garbage")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/garbage.pcap"
        let writer = try PcapWriter(path: path, linkType: .raw)
        var random = SystemRandomNumberGenerator()
        for index in 0..<200 {
            var bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            if index % 2 == 0, !bytes.isEmpty { bytes[0] = 0x45 }   // looks like IPv4 at first glance
            try writer.write(bytes, timestampNanoseconds: Int64(index) * 1_000_000)
        }
        writer.close()
        let report = try ReplayFixtures.replay(path)
        #expect(report.capture.frames == 200)
        #expect(report.parser.rejected + report.parser.parsed + report.capture.framesWithoutIp == 200)
        #expect(report.parser.rejected > 150)
        #expect(report.parser.rejections.count == min(100, report.parser.rejected))
        #expect(report.parser.rejections.allSatisfy { (1...200).contains($0.packet) && !$0.message.isEmpty })
        #expect(report.error == nil)
        let tool = try await ReplayFixtures.runTool([path, "--no-pcaps"])
        #expect(tool.status == 0)
        #expect(tool.output.contains("rejected"))
    }

    /// A key log that is not one, or cannot be read, stops `dissect --keylog` before it reads the capture: exit 1
    /// and the line at fault; output files that cannot be written do the same.
    @Test func aBadKeyLogOrAnUnwritableOutputIsExitOneWithTheReason() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("bad-keylog")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "# keys\nLOCAL_STATIC_PRIVATE_KEY = not-base64\n".write(toFile: directory + "/keys", atomically: true, encoding: .utf8)
        let bad = try await ReplayFixtures.runTool(["dissect", "--keylog", directory + "/keys", ReplayFixtures.capture])
        #expect(bad.status == 1 && bad.errors.contains("line 2") && bad.errors.contains("LOCAL_STATIC_PRIVATE_KEY"), "\(bad.errors)")
        #expect(bad.output.isEmpty, "nothing dissected with a broken key log")
        let missing = try await ReplayFixtures.runTool(["dissect", "--keylog", directory + "/none", ReplayFixtures.capture])
        #expect(missing.status == 1 && missing.errors.contains(directory + "/none"), "\(missing.errors)")
        let unwritable = try await ReplayFixtures.runTool(["dissect", "--write-wireguard", "/nonexistent/dir/x.pcap", ReplayFixtures.capture])
        #expect(unwritable.status == 1 && unwritable.errors.contains("/nonexistent/dir/x.pcap"), "\(unwritable.errors)")
    }

    @Test func aCutOffFileReportsEverythingBeforeTheCutAndExitsOne() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("truncated")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: ReplayFixtures.capture))
        let path = directory + "/cut.pcap"
        try bytes.prefix(bytes.count / 2 + 7).write(to: URL(fileURLWithPath: path))
        let report = try ReplayFixtures.replay(path)
        let error = try #require(report.error)
        #expect(error.contains("record \(report.capture.frames + 1)"), "\(error)")
        #expect(report.capture.frames > 20)
        #expect(report.verdict(.routed).packets > 0)
        let tool = try await ReplayFixtures.runTool([path, "--resources", ReplayFixtures.resources, "--no-pcaps"])
        #expect(tool.status == 1)
        #expect(tool.output.contains("Capture ended early"))
        #expect(tool.errors.contains("capture ended early"))
        let dissect = try await ReplayFixtures.runTool(["dissect", "-q", path])
        #expect(dissect.status == 1)
    }

    @Test(arguments: [("wrong-magic", Array("this is not a capture file at all".utf8)), ("empty", [UInt8]())])
    func notACaptureExitsOneWithTheFileNamed(_ name: String, _ content: [UInt8]) async throws {
        let directory = try ReplayFixtures.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/\(name).pcap"
        try Data(content).write(to: URL(fileURLWithPath: path))
        #expect(throws: ReplayInputError.self) { try ReplayFixtures.replay(path) }
        for arguments in [[path, "--no-pcaps"], ["dissect", path], ["parse", path]] {
            let tool = try await ReplayFixtures.runTool(arguments)
            #expect(tool.status == 1, "\(arguments)")
            #expect(tool.errors.contains(path), "\(arguments): \(tool.errors)")
        }
    }

    @Test func badUsageAndABadResourcesFileAreToldApart() async throws {
        let usage = try await ReplayFixtures.runTool([ReplayFixtures.capture, "--drain", "-5"])
        #expect(usage.status == 64)
        let noPause = try await ReplayFixtures.runTool([ReplayFixtures.capture, "--longest-pause", "0"])
        #expect(noPause.status == 64)
        #expect(noPause.errors.contains("--longest-pause"), "\(noPause.errors)")
        let missing = try await ReplayFixtures.runTool([])
        #expect(missing.status == 64)
        let directory = try ReplayFixtures.temporaryDirectory("yaml")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "resources: [oops".write(toFile: directory + "/bad.yaml", atomically: true, encoding: .utf8)
        let badFile = try await ReplayFixtures.runTool([ReplayFixtures.capture, "--resources", directory + "/bad.yaml"])
        #expect(badFile.status == 1)
        #expect(badFile.errors.contains("resources file"))
    }

    @Test func framesCutByTheSnapLengthAreCountedAndRejectedNotReplayed() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("snaplen")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/snap64.pcap"
        try await ReplayFixtures.shell(["editcap", "-s", "64", ReplayFixtures.capture, path])
        let report = try ReplayFixtures.replay(path)
        // Frames longer than 64 bytes lose their tail: each is counted as cut and its IP packet rejected.
        let long = try await ReplayFixtures.tsharkFields(["frame.number"], of: ReplayFixtures.capture, filter: "frame.len > 64").count
        #expect(report.capture.truncatedFrames == long)
        #expect(report.parser.rejected == long)
        #expect(report.parser.byReason.keys.allSatisfy { $0.contains("length") || $0.contains("truncated") || $0.contains("short") },
                "\(report.parser.byReason)")
        #expect(report.error == nil)
    }

    /// A capture whose clock jumps ten years (editcap moves the second half): the pause is shortened to the
    /// longest pause, so the replay does not run ten years of the tunnel's timers (hours of work, found by
    /// Fuzz/PcapReplay), and every packet gets the verdict it gets without the jump.
    @Test(.timeLimit(.minutes(1))) func aClockThatJumpsYearsIsShortenedAndChangesNoVerdict() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("jump")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (before, after, later, jumped) = (directory + "/before.pcap", directory + "/after.pcap", directory + "/later.pcap",
                                              directory + "/jumped.pcap")
        try await ReplayFixtures.shell(["editcap", "-r", ReplayFixtures.capture, before, "1-24"])
        try await ReplayFixtures.shell(["editcap", "-r", ReplayFixtures.capture, after, "25-61"])
        try await ReplayFixtures.shell(["editcap", "-t", "315360000", after, later])
        try await ReplayFixtures.shell(["mergecap", "-a", "-F", "pcap", "-w", jumped, before, later])

        let plain = try ReplayFixtures.replay(ReplayFixtures.capture)
        let report = try ReplayFixtures.replay(jumped)
        #expect(report.capture.frames == 61)
        #expect(report.capture.shortenedPauses == 1)
        #expect(plain.capture.shortenedPauses == 0)
        #expect(report.clientToResource == plain.clientToResource)
        #expect(report.resourceToClient == plain.resourceToClient)
        #expect(report.pipelineErrors == 0, "\(report.pipelineErrorMessages)")

        // A pause of 5,000 s is over the default hour but within the two hours the tool's flag allows.
        let (later5000, paused) = (directory + "/later-5000.pcap", directory + "/paused.pcap")
        try await ReplayFixtures.shell(["editcap", "-t", "5000", after, later5000])
        try await ReplayFixtures.shell(["mergecap", "-a", "-F", "pcap", "-w", paused, before, later5000])
        #expect(try ReplayFixtures.replay(paused).capture.shortenedPauses == 1)
        let tool = try await ReplayFixtures.runTool([paused, "--resources", ReplayFixtures.resources, "--no-pcaps", "--json",
                                                     "--longest-pause", "7200"])
        #expect(tool.status == 0, "\(tool.errors)")
        let printed = try JSONDecoder().decode(TunnelReport.self, from: Data(tool.output.utf8))
        #expect(printed.capture.shortenedPauses == 0)
        #expect(printed.pipelineErrors == 0, "\(printed.pipelineErrorMessages)")
    }

    /// Fuzz/PcapReplay's find: a neighbour advertisement from an IPv6 resource, let through once the client's
    /// ping to it had left the gateway, is a packet the gateway refuses (its NAT does not translate ICMPv6 type
    /// 136). That is the packet's fault: a gateway drop with a reason, not a pipeline error, and not unaccounted.
    @Test func aPacketTheGatewayRefusesIsADropNotAPipelineError() throws {
        let path = ReplayFixtures.root + "/Fuzz/corpora/PcapReplay/regression-neighbour-advertisement-answering-a-routed-packet"
        let report = try ReplayFixtures.replay(path)
        #expect(report.pipelineErrors == 0, "\(report.pipelineErrorMessages)")
        #expect(report.gatewayDrops == ["refused-packet": 1])
        #expect(report.verdict(ResourceVerdict.droppedByGateway).packets == 1)
        #expect(report.verdict(ResourceVerdict.unaccounted) == Tally())
        #expect(report.verdict(ClientVerdict.routed).packets == 1)
    }
}
