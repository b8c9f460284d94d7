import Foundation
import PcapFile
import Replay
import TestSupport
import Testing

/// Dissect mode on underlay captures of independent implementations (wireguard-go, coturn and its
/// turnutils_uclient), recorded now with tcpdump: our classification agrees with tshark's packet by packet.
@Suite(.serialized) struct DissectTests {
    private func dissect(_ path: String) throws -> DissectReport {
        let reader = try PcapReader(path: path)
        var dissector = UnderlayDissector()
        while let record = try reader.next() { dissector.add(record) }
        dissector.finish()
        return dissector.report
    }

    /// tshark's view of each frame: STUN message type, ChannelData channel, WireGuard type and indices.
    private func tsharkView(_ path: String) async throws -> [[String: String]] {
        try await ReplayFixtures.tsharkFields(["frame.number", "stun.type", "stun.channel", "wg.type", "wg.receiver", "wg.sender", "wg.counter"], of: path)
    }

    @Test func wireGuardGoAndCoturnSessionsAgreeWithTshark() async throws {
        ReplayFixtures.requireRoot()
        let directory = try ReplayFixtures.temporaryDirectory("underlay")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await ReplayFixtures.record("record-underlay", [directory])

        let wireGuard = try dissect(directory + "/wireguard-go.pcap")
        let wireGuardFrames = try await tsharkView(directory + "/wireguard-go.pcap")
        #expect(wireGuard.datagrams.count == wireGuardFrames.count)
        for (ours, theirs) in zip(wireGuard.datagrams, wireGuardFrames) {
            #expect(ours.kind == .wireGuard, "#\(ours.packet)")
            #expect(ours.wireGuardType.map { String($0.number) } == theirs["wg.type"], "#\(ours.packet)")
            #expect(ours.receiverIndex.map { "0x" + String(format: "%08x", $0) } ?? "" == theirs["wg.receiver"], "#\(ours.packet)")
            #expect(ours.senderIndex.map { "0x" + String(format: "%08x", $0) } ?? "" == theirs["wg.sender"], "#\(ours.packet)")
            #expect(ours.counter.map(String.init) ?? "" == theirs["wg.counter"], "#\(ours.packet)")
        }
        #expect(wireGuard.sessions.count == 1)
        #expect(wireGuard.sessions.first?.responderIndex != nil)
        #expect(wireGuard.dataWithoutHandshake == 0)

        let turn = try dissect(directory + "/coturn.pcap")
        let turnFrames = try await tsharkView(directory + "/coturn.pcap")
        #expect(turn.datagrams.count == turnFrames.count)
        for (ours, theirs) in zip(turn.datagrams, turnFrames) {
            #expect(ours.stunType.map { "0x" + String(format: "%04x", $0) } ?? "" == theirs["stun.type"], "#\(ours.packet)")
            #expect(ours.channel.map { "0x" + String(format: "%04x", $0) } ?? "" == theirs["stun.channel"], "#\(ours.packet)")
            #expect(ours.kind != .malformed && ours.kind != .other, "#\(ours.packet): \(ours.summary)")
        }
        #expect(turn.stunByType["allocate success"] ?? 0 >= 1)
        #expect(turn.stunByType["channel-bind success"] ?? 0 >= 1)
        #expect(turn.byKind["channel-data"] ?? 0 > 0)
        #expect(turn.relays == ["10.88.0.2:3478"])
    }

    @Test func ourTunnelsWireIsDissectedLikeTsharkDissectsIt() async throws {
        let directory = try ReplayFixtures.temporaryDirectory("wire")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try ReplayFixtures.replay(ReplayFixtures.capture, output: directory)
        let report = try dissect(directory + "/wire.pcap")
        let frames = try await tsharkView(directory + "/wire.pcap")
        #expect(report.datagrams.count == frames.count)
        for (ours, theirs) in zip(report.datagrams, frames) {
            #expect(ours.stunType.map { "0x" + String(format: "%04x", $0) } ?? "" == theirs["stun.type"], "#\(ours.packet)")
            #expect(ours.channel.map { "0x" + String(format: "%04x", $0) } ?? "" == theirs["stun.channel"], "#\(ours.packet)")
            #expect(ours.wireGuardType.map { String($0.number) } ?? "" == theirs["wg.type"], "#\(ours.packet)")
        }
        #expect(report.channelDataCarrying["stun"] ?? 0 > 0)
        #expect(report.malformed.isEmpty)
    }
}
