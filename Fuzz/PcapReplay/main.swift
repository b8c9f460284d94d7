// libFuzzer harness for the pcap-replay tool's input: the bytes are a capture file (pcap or pcapng, any link
// type), read by `PcapReader` and replayed by `TunnelReplay` through a real client and gateway with the demo's
// resources. Whatever the file holds, nothing crashes or hangs, and the report accounts for every record:
//
// 1. the reader numbers records 1, 2, 3, … and stops (a record takes at least 16 bytes of the file);
// 2. for every link type, the IP packet `LinkLayer` finds lies inside its frame and is its tail, or a prefix
//    of that tail (Ethernet's padding cut off);
// 3. the replay reads the same records: its frames are the reader's, it reports an error exactly when the
//    reader stopped on one, and every frame is counted once (parsed, rejected by the parser, or without IP);
// 4. a capture never makes the client or gateway refuse something (no pipeline error): the portal's messages
//    are the scenario's, so whatever the packets are, they are traffic, not faults of the pipeline;
// 5. the timeline page (`--html`) of whatever was replayed is written whole.
//
// Build and run with `scripts/fuzz PcapReplay [seconds]`.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PcapFile
import Replay

enum Fixture {
    /// The capture's bytes go to a memory file the reader opens by path, as the tool opens a file.
    static let captureFile = CaptureFile()
    /// Fixtures/captures/replay-demo.yaml: CIDR resources with and without filters, IPv4 and IPv6, a DNS wildcard.
    static let scenario: ReplayScenario = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fixtures/captures/replay-demo.yaml").standardized.path
        do {
            return try ReplayScenario(yaml: String(contentsOfFile: path, encoding: .utf8))
        } catch {
            fatalError("the demo scenario \(path) does not load: \(error)")
        }
    }()
    /// Pauses over 10 minutes are shortened to 10 (the tool's default is an hour) so that an input of a hundred
    /// long pauses still replays in seconds; every idle timeout of the tunnel is shorter.
    static let options: TunnelReplay.Options = {
        var options = TunnelReplay.Options(scenario: scenario)
        options.longestPause = .seconds(600)
        options.drawsTimeline = true
        return options
    }()
    static let linkTypes: [LinkType] = [.null, .ethernet, .raw, .loop, .linuxSll, .ipv4, .ipv6, .linuxSll2, LinkType(rawValue: 147)]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcapReplay(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let captureFile = Fixture.captureFile
    captureFile.replaceContents(with: UnsafeRawBufferPointer(start: data, count: size))
    let read = readAllRecords(limit: size / 16 + 1)
    guard let replay = try? TunnelReplay(path: captureFile.path, options: Fixture.options) else {
        require(read.opened == false, "the replay opens what the reader opens")
        return 0
    }
    require(read.opened, "the reader opens what the replay opens")
    let report: TunnelReport
    do {
        report = try replay.run()
    } catch {
        fatalError("the replay failed without writing outputs: \(error)")
    }
    require(report.capture.frames == read.records, "the replay read \(report.capture.frames) frames, the reader \(read.records)")
    require((report.error != nil) == (read.error != nil),
            "the replay's error (\(report.error ?? "none")) matches the reader's (\(read.error.map { "\($0)" } ?? "none"))")
    let counted = report.parser.parsed + report.parser.rejected + report.capture.framesWithoutIp
    require(counted == report.capture.frames, "\(counted) frames counted of \(report.capture.frames)")
    require(report.capture.shortenedPauses < max(1, report.capture.frames), "a pause is between two records")
    require(report.pipelineErrors == 0, "a capture made the pipeline refuse something: \(report.text)")
    require(!report.text.isEmpty, "the report is written")
    let page = replay.timeline(title: "fuzz")?.html() ?? ""
    require(page.hasPrefix("<!DOCTYPE html>") && page.hasSuffix("</html>\n"), "the timeline page is written whole")
    return 0
}

struct ReadResult {
    var opened = false
    var records = 0
    var error: PcapError?
}

/// Reads the capture to its end or its first error, checking what the reader and `LinkLayer` give back.
func readAllRecords(limit: Int) -> ReadResult {
    var result = ReadResult()
    let path = Fixture.captureFile.path
    guard let reader = try? PcapReader(path: path) else { return result }
    result.opened = true
    do {
        while let record = try reader.next() {
            result.records += 1
            require(record.number == result.records, "record \(record.number) came as the \(result.records)th")
            require(result.records <= limit, "more records than the file has room for")
            checkLinkLayer(record.data)
        }
    } catch {
        require(!error.message.isEmpty && error.path == path, "the error names the file and says why")
        result.error = error
    }
    return result
}

func checkLinkLayer(_ frame: UnsafeRawBufferPointer) {
    for linkType in Fixture.linkTypes {
        guard let packet = LinkLayer.ipPacket(in: frame, linkType: linkType) else { continue }
        guard let frameStart = frame.baseAddress, let packetStart = packet.baseAddress else {
            require(packet.isEmpty, "an empty packet is the frame's empty tail")
            continue
        }
        let offset = packetStart - frameStart
        require(offset >= 0 && offset + packet.count <= frame.count, "\(linkType): the packet lies inside its frame")
        require(offset + packet.count == frame.count || linkType == .ethernet,
                "\(linkType): only Ethernet's padding is cut off the end")
    }
}

func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    guard !condition else { return }
    fatalError("property violated: \(message())")
}

/// An unlinked file in memory (/dev/shm) whose contents each input replaces; `path` opens it like any file.
final class CaptureFile: Sendable {
    let descriptor: CInt
    let path: String

    init() {
        var template = Array("/dev/shm/fuzz-capture-XXXXXX".utf8CString)
        descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { fatalError("mkstemp in /dev/shm failed: errno \(errno)") }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        path = "/proc/self/fd/\(descriptor)"
    }

    func replaceContents(with bytes: UnsafeRawBufferPointer) {
        guard ftruncate(descriptor, 0) == 0 else { fatalError("ftruncate failed: errno \(errno)") }
        var written = 0
        while written < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(written))
            guard result > 0 else { fatalError("pwrite failed: errno \(errno)") }
            written += result
        }
    }
}
