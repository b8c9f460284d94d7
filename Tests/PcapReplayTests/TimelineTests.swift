import Foundation
import PcapFile
import Replay
import TestSupport
import Testing

/// `--html`: the timeline page, rendered by librsvg (`rsvg-convert`) to a PNG, is not blank and shows every
/// connection of the capture as a row with something drawn in it. Beside it, `--write-wireguard`'s export.
@Suite(.offPool) struct TimelineTests {
    /// Renders the page's SVG and returns, per row, how many pixels differ from the row's background.
    private func paintedPixelsPerRow(_ html: String, rows: Int, in directory: String) throws -> [Int] {
        let svg = try #require(html.range(of: "<svg").flatMap { start in html.range(of: "</svg>").map { html[start.lowerBound..<$0.upperBound] } })
        try String(svg).write(toFile: directory + "/timeline.svg", atomically: true, encoding: .utf8)
        _ = try Shell.run("rsvg-convert", "-f", "png", "-o", directory + "/timeline.png", directory + "/timeline.svg")
        let bands = (0..<rows).map { "\(Timeline.rowTop($0)):\(Timeline.rowTop($0) + 60)" }.joined(separator: ",")
        let output = try Shell.run(["python3", "-c", Self.countPixels, directory + "/timeline.png", bands]).output
        return output.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    @Test func theTunnelReplaysTimelineShowsTheWireAndTheVerdictsEachWay() throws {
        var options = TunnelReplay.Options(scenario: try ReplayFixtures.scenario)
        options.drawsTimeline = true
        let replay = try TunnelReplay(path: ReplayFixtures.capture, options: options)
        let report = try replay.run()
        let timeline = try #require(replay.timeline(title: "replay-demo"))
        let names = timeline.rows.map(\.name)
        #expect(names.contains("client → resources") && names.contains("resources → client"), "\(names)")
        #expect(names.contains { $0.hasPrefix("wire ") }, "the wire between client, gateway and relay: \(names)")
        let counted = timeline.rows.first { $0.name == "client → resources" }?.perSecond.values.reduce(0) { $0 + $1.values.reduce(0, +) }
        #expect(counted == report.clientToResource.values.reduce(0) { $0 + $1.packets }, "every verdict is on the timeline")
        #expect(timeline.rows.contains { $0.marks.contains { $0.kind == .handshake } }, "the WireGuard handshake is marked")
        #expect(timeline.rows.contains { $0.marks.contains { $0.kind == .turn } }, "TURN requests are marked")

        let directory = try ReplayFixtures.temporaryDirectory("timeline")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let html = timeline.html()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.contains("<script") && !html.contains("src="), "self-contained: nothing to fetch or run")
        let painted = try paintedPixelsPerRow(html, rows: timeline.rows.count, in: directory)
        #expect(painted.count == timeline.rows.count && painted.allSatisfy { $0 > 200 }, "every row drawn: \(painted)")
    }

    @Test func dissectsTimelineHasARowPerEndpointPairOfTheCapture() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("timeline-dissect")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try ReplayFixtures.replay(ReplayFixtures.capture, output: directory)
        let run = try await ReplayFixtures.runTool(["dissect", "--quiet", "--json", "--html", directory + "/page.html",
                                                    "--write-wireguard", directory + "/wireguard.pcap", directory + "/wire.pcap"])
        #expect(run.status == 0, "\(run.errors)")
        let report = try JSONDecoder().decode(DissectReport.self, from: Data(run.output.utf8))
        let html = try String(contentsOfFile: directory + "/page.html", encoding: .utf8)
        // The exported messages, one datagram each, with checksums tshark accepts.
        let exported = try await ReplayFixtures.tsharkFields(["frame.number", "wg.type"], of: directory + "/wireguard.pcap")
        let messages = report.wireGuardByType.values.reduce(0, +) + (report.channelDataCarrying["wireguard"] ?? 0)
        #expect(exported.count == messages && exported.allSatisfy { !($0["wg.type"] ?? "").isEmpty }, "\(exported.count) of \(messages)")
        #expect(try await ReplayFixtures.tsharkComplaints(directory + "/wireguard.pcap").isEmpty)
        for peer in report.peers {
            #expect(html.contains(">\(peer.endpoints.prefix(Timeline.labelLength))</text>"), "a row for \(peer.endpoints)")
        }
        let painted = try paintedPixelsPerRow(html, rows: report.peers.count, in: directory)
        #expect(painted.count == report.peers.count && painted.allSatisfy { $0 > 200 }, "every row drawn: \(painted)")
    }

    /// Decodes an 8-bit RGB(A) PNG with the standard library (zlib and the five scanline filters) and prints, per
    /// band "top:bottom" of the image, the pixels that are neither white nor the rows' light grey.
    static let countPixels = """
        import struct, sys, zlib
        data = open(sys.argv[1], 'rb').read()
        offset, chunks, header = 8, b'', None
        while offset < len(data):
            length, kind = struct.unpack('>I4s', data[offset:offset + 8])
            body = data[offset + 8:offset + 8 + length]
            if kind == b'IHDR': header = struct.unpack('>IIBBBBB', body)
            if kind == b'IDAT': chunks += body
            offset += 12 + length
        width, height, depth, color = header[:4]
        assert depth == 8 and color in (2, 6), header
        channels = 4 if color == 6 else 3
        raw, stride, rows, previous = zlib.decompress(chunks), width * channels, [], bytearray(width * channels)
        for y in range(height):
            kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            for x in range(stride):
                a = line[x - channels] if x >= channels else 0
                b, c = previous[x], previous[x - channels] if x >= channels else 0
                if kind == 1: line[x] = (line[x] + a) & 255
                elif kind == 2: line[x] = (line[x] + b) & 255
                elif kind == 3: line[x] = (line[x] + (a + b) // 2) & 255
                elif kind == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            rows.append(line)
            previous = line
        counts = []
        for band in sys.argv[2].split(','):
            top, bottom = (int(v) for v in band.split(':'))
            painted = 0
            for line in rows[top:min(bottom, height)]:
                for x in range(300 * channels, stride, channels):
                    pixel = tuple(line[x:x + 3])
                    if pixel not in ((255, 255, 255), (247, 247, 247)): painted += 1
            counts.append(painted)
        print(' '.join(str(c) for c in counts))
        """
}
