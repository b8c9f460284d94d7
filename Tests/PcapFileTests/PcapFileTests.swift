import Foundation
import PcapFile
import Testing

@Suite struct PcapFileTests {
    private func temporaryPath() -> String {
        NSTemporaryDirectory() + "pcapfile-\(UUID().uuidString).pcap"
    }

    @Test func writtenRecordsReadBackWithNanosecondTimestamps() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .raw)
        try writer.write([0x45, 0, 0, 20], timestampNanoseconds: 1_700_000_000_123_456_789)
        try writer.write([0x60, 1, 2], timestampNanoseconds: 1_700_000_001_000_000_001)
        writer.close()

        let reader = try PcapReader(path: path)
        #expect(reader.linkType == .raw)
        let first = try #require(try reader.next())
        #expect(first.number == 1)
        #expect(first.timestampNanoseconds == 1_700_000_000_123_456_789)
        #expect(Array(first.data) == [0x45, 0, 0, 20])
        let second = try #require(try reader.next())
        #expect(second.timestampNanoseconds == 1_700_000_001_000_000_001)
        #expect(Array(second.data) == [0x60, 1, 2])
        #expect(try reader.next() == nil)
    }

    @Test func writeAfterCloseIsATypedError() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .raw)
        writer.close()
        #expect(throws: PcapError.self) { try writer.write([1], timestampNanoseconds: 0) }
    }

    @Test func missingAndCorruptFilesAreTypedErrorsNamingTheFile() throws {
        let missing = "/nonexistent/capture.pcap"
        let error = try #require(throws: PcapError.self) { try PcapReader(path: missing) }
        #expect(error.description.hasPrefix(missing))

        let corrupt = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: corrupt) }
        try Data("this is not a capture file at all".utf8).write(to: URL(fileURLWithPath: corrupt))
        #expect(throws: PcapError.self) { try PcapReader(path: corrupt) }
    }

    /// A record header promising more bytes than the file holds ends reading with an error, after the
    /// complete records before it were delivered.
    @Test func truncatedFileDeliversCompleteRecordsThenFails() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .raw)
        try writer.write(Array(repeating: 0x45, count: 40), timestampNanoseconds: 0)
        try writer.write(Array(repeating: 0x45, count: 40), timestampNanoseconds: 0)
        writer.close()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.removeLast(10)
        try bytes.write(to: URL(fileURLWithPath: path))

        let reader = try PcapReader(path: path)
        #expect(try reader.next()?.data.count == 40)
        #expect(throws: PcapError.self) { try reader.next() }
    }

    @Test func ethernetFramesYieldIpAndSkipOtherEtherTypes() {
        let ipv4 = [UInt8](repeating: 0, count: 6) + [UInt8](repeating: 1, count: 6) + [0x08, 0x00, 0x45, 0x00, 0x00, 0x14]
            + [UInt8](repeating: 0, count: 16)
        let arp = [UInt8](repeating: 0, count: 12) + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)
        let vlan = [UInt8](repeating: 0, count: 12) + [0x81, 0x00, 0x00, 0x05, 0x86, 0xDD] + [0x60, 0, 0, 0]
        ipv4.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .ethernet)?.first == 0x45) }
        arp.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .ethernet) == nil) }
        vlan.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .ethernet)?.first == 0x60) }
        [UInt8]([0x00]).withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .ethernet) == nil) }
    }

    /// Ethernet pads short frames to 60 bytes; the padding is not part of the IP packet.
    @Test func ethernetPaddingIsCutByTheIpLength() {
        let header = [UInt8](repeating: 0, count: 12) + [0x08, 0x00]
        let packet: [UInt8] = [0x45, 0, 0, 28] + [UInt8](repeating: 0, count: 24)
        let frame = header + packet + [UInt8](repeating: 0xEE, count: 18)
        frame.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .ethernet)?.count == 28) }
    }

    @Test func cookedAndLoopbackLinkTypes() {
        let sll = [UInt8](repeating: 0, count: 14) + [0x86, 0xDD] + [0x60, 1]
        let sll2 = [0x08, 0x00] + [UInt8](repeating: 0, count: 18) + [0x45, 2]
        let null: [UInt8] = [2, 0, 0, 0, 0x45, 3]
        sll.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .linuxSll).map(Array.init) == [0x60, 1]) }
        sll2.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .linuxSll2).map(Array.init) == [0x45, 2]) }
        null.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: .null).map(Array.init) == [0x45, 3]) }
        null.withUnsafeBytes { #expect(LinkLayer.ipPacket(in: $0, linkType: LinkType(rawValue: 147)) == nil) }
    }

    /// pcapng counts time in units of the interface's resolution in 64 bits, so a file can hold seconds that no
    /// nanosecond count of Int64 reaches, or (past 2^63) seconds that wrap before 1970. Such a record is a typed
    /// error naming it, after the records before it; it used to overflow and trap.
    @Test(arguments: [UInt64(1) << 40, UInt64(1) << 63 + 5])
    func timestampsBeyondNanosecondRangeAreTypedErrors(seconds: UInt64) throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = PcapngFile(secondsResolution: true)
            .record(seconds: 1_700_000_000, bytes: [0x45, 0, 0, 20])
            .record(seconds: seconds, bytes: [0x45, 0, 0, 21])
        try Data(file.bytes).write(to: URL(fileURLWithPath: path))

        let reader = try PcapReader(path: path)
        #expect(try reader.next()?.timestampNanoseconds == 1_700_000_000_000_000_000)
        let error = try #require(throws: PcapError.self) { try reader.next() }
        #expect(error.description.hasPrefix(path), "\(error)")
        #expect(error.message.contains("record 2"), "\(error)")
        #expect(error.message.contains("timestamp"), "\(error)")
    }
}

/// A pcapng file of raw IP records, for timestamps the classic format cannot hold.
private struct PcapngFile {
    private(set) var bytes: [UInt8] = []
    private let secondsResolution: Bool

    init(secondsResolution: Bool) {
        self.secondsResolution = secondsResolution
        bytes += block(type: 0x0A0D_0D0A, body: le32(0x1A2B_3C4D) + [1, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8))
        var interface: [UInt8] = [12, 0, 0, 0] + le32(0)  // LINKTYPE_RAW, snap length 0 (none)
        if secondsResolution { interface += [9, 0, 1, 0, 0, 0, 0, 0] + [0, 0, 0, 0] }  // if_tsresol = 10^0, end of options
        bytes += block(type: 1, body: interface)
    }

    func record(seconds: UInt64, bytes packet: [UInt8]) -> PcapngFile {
        let units = secondsResolution ? seconds : seconds &* 1_000_000
        var copy = self
        copy.bytes += block(type: 6, body: le32(0) + le32(UInt32(units >> 32)) + le32(UInt32(truncatingIfNeeded: units))
                                + le32(UInt32(packet.count)) + le32(UInt32(packet.count)) + packet)
        return copy
    }

    private func block(type: UInt32, body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        let length = le32(UInt32(12 + padded.count))
        return le32(type) + length + padded + length
    }

    private func le32(_ value: UInt32) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian, Array.init)
    }
}
