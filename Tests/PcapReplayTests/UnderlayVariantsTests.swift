import Foundation
import PcapFile
import Replay
import TestSupport
import Testing

/// Dissect mode on underlay captures as people record them, of a wireguard-go pair whose pings fill the
/// 1280-byte tunnel: Ethernet at MTU 1500, `tcpdump -i any` (Linux cooked v2), a snap length of 96, a pcapng
/// file of two interfaces with different link types (tcpdump on both, mergecap), IPv4 fragments, one and two VLAN tags
/// (tcprewrite), an IPv6 underlay whole and fragmented. Every frame's WireGuard fields agree with tshark's.
@Suite(.serialized) struct UnderlayVariantsTests {
    private static let tsharkFields = [
        "frame.number", "frame.len", "frame.cap_len", "wg.type", "wg.receiver", "wg.sender", "wg.counter",
        "ip.fragment.count", "ipv6.fragment.count", "icmp.type", "icmpv6.type",
    ]

    private func dissect(_ path: String) throws -> (DissectReport, Set<LinkType>) {
        let reader = try PcapReader(path: path)
        var dissector = UnderlayDissector()
        var linkTypes: Set<LinkType> = []
        while let record = try reader.next() {
            linkTypes.insert(record.linkType)
            dissector.add(record)
        }
        dissector.finish()
        return (dissector.report, linkTypes)
    }

    /// Dissects `name` and compares it with tshark frame by frame; returns our report and tshark's rows.
    private func compare(_ name: String, in directory: String) async throws -> (DissectReport, [[String: String]], Set<LinkType>) {
        let path = directory + "/" + name
        let (report, linkTypes) = try dissect(path)
        let frames = try await ReplayFixtures.tsharkFields(Self.tsharkFields, of: path)
        #expect(report.frames == frames.count, "\(name): \(report.frames) frames, tshark \(frames.count)")
        let ours = Dictionary(report.datagrams.map { ($0.packet, $0) }, uniquingKeysWith: { first, _ in first })
        let truncated = Set(report.truncated.map(\.packet))
        for frame in frames {
            let number = Int(frame["frame.number"] ?? "") ?? 0
            let where_ = "\(name) #\(number)"
            let isTruncated = Int(frame["frame.cap_len"] ?? "") ?? 0 < Int(frame["frame.len"] ?? "") ?? 0
            #expect(truncated.contains(number) == isTruncated, "\(where_): truncated \(isTruncated) for tshark")
            guard !isTruncated else {
                #expect(ours[number] == nil, "\(where_): a truncated frame is not classified")
                continue
            }
            let datagram = ours[number]
            #expect(datagram?.wireGuardType.map { String($0.number) } ?? "" == frame["wg.type"], "\(where_): \(datagram?.summary ?? "no datagram")")
            #expect(datagram?.receiverIndex.map { "0x" + String(format: "%08x", $0) } ?? "" == frame["wg.receiver"], "\(where_)")
            #expect(datagram?.senderIndex.map { "0x" + String(format: "%08x", $0) } ?? "" == frame["wg.sender"], "\(where_)")
            #expect(datagram?.counter.map(String.init) ?? "" == frame["wg.counter"], "\(where_)")
            let fragments = Int(frame["ip.fragment.count"] ?? "") ?? Int(frame["ipv6.fragment.count"] ?? "")
            #expect((datagram?.reassembled ?? false) == (fragments != nil), "\(where_): reassembled from \(fragments ?? 0) fragments for tshark")
        }
        let reassembled = frames.compactMap { Int($0["ip.fragment.count"] ?? "") ?? Int($0["ipv6.fragment.count"] ?? "") }
        #expect(report.reassembledDatagrams == reassembled.count, "\(name)")
        #expect(report.fragmentsHeld == reassembled.reduce(0) { $0 + $1 - 1 }, "\(name)")
        #expect(report.incompleteDatagrams == 0, "\(name)")
        #expect(report.rejectedIpPackets == 0, "\(name): \(report.malformed.map(\.message))")
        #expect(report.byKind["malformed"] == nil, "\(name): \(report.malformed.map(\.message))")
        return (report, frames, linkTypes)
    }

    @Test func everyFrameOfEveryKindOfCaptureAgreesWithTshark() async throws {
        ReplayFixtures.requireRoot()
        let directory = try ReplayFixtures.temporaryDirectory("underlay-variants")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await ReplayFixtures.record("record-underlay-variants", [directory])

        // Full-sized datagrams (1340 bytes of IP) are whole underlay packets, not oversized tunnel packets.
        let (ethernet, ethernetFrames, _) = try await compare("ethernet.pcap", in: directory)
        #expect(ethernetFrames.contains { Int($0["frame.len"] ?? "") == 1354 && $0["wg.type"] == "4" })
        #expect(ethernet.wireGuardByType["data"] ?? 0 >= 14)
        #expect(ethernet.sessions.count == 1 && ethernet.dataWithoutHandshake == 0)

        for name in ["any.pcap", "vlan.pcap", "qinq.pcap"] {
            let (report, _, linkTypes) = try await compare(name, in: directory)
            #expect(report.wireGuardByType == ethernet.wireGuardByType, "\(name)")
            #expect(linkTypes == [name == "any.pcap" ? .linuxSll2 : .ethernet], "\(name)")
        }

        let (snapLength, snapFrames, _) = try await compare("snaplen.pcap", in: directory)
        let longerThanTheSnapLength = snapFrames.filter { Int($0["frame.len"] ?? "") ?? 0 > 96 }.count
        #expect(snapLength.truncatedFrames == longerThanTheSnapLength && longerThanTheSnapLength >= 14, "every frame over 96 bytes is cut")
        #expect(snapLength.malformed.isEmpty)

        let (multi, multiFrames, multiLinks) = try await compare("multi.pcapng", in: directory)
        #expect(multiLinks == [.ethernet, .raw], "dumpcap's Ethernet link and the WireGuard interface in one file")
        #expect(multi.nonUdpPackets == multiFrames.filter { !($0["icmp.type"] ?? "").isEmpty }.count)
        #expect(multi.wireGuardByType == ethernet.wireGuardByType)

        let (fragments, _, _) = try await compare("fragments.pcap", in: directory)
        #expect(fragments.reassembledDatagrams >= 8, "every 1340-byte datagram crossed an MTU of 1000 in two fragments")

        let (ipv6, _, _) = try await compare("ipv6.pcap", in: directory)
        #expect(ipv6.reassembledDatagrams >= 6, "the pings after the MTU dropped to 1280 came in fragments")
        #expect(ipv6.wireGuardByType["data"] ?? 0 >= 12)
    }

    /// The tool on the capture of the report that opened the issue: no frame rejected, exit status 0.
    @Test func theToolReadsAFullSizedCaptureWithoutRejectingAFrame() async throws {
        ReplayFixtures.requireRoot()
        let directory = try ReplayFixtures.temporaryDirectory("underlay-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await ReplayFixtures.record("record-underlay-variants", [directory])
        for name in ["ethernet.pcap", "multi.pcapng", "fragments.pcap"] {
            let run = try await ReplayFixtures.runTool(["dissect", "--quiet", directory + "/" + name])
            #expect(run.status == 0, "\(name): \(run.errors)")
            #expect(run.output.contains(" 0 IP packets rejected"), "\(name): \(run.output)")
            #expect(!run.output.contains("Malformed"), "\(name): \(run.output)")
        }
    }
}
