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
}
