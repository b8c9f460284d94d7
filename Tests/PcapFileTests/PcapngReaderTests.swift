import Foundation
import PcapFile
import TestSupport
import Testing

/// The toolkit's own pcapng reader, on what dumpcap and mergecap write rarely but the format allows: sections
/// in either byte order, interfaces of different link types, binary and decimal timestamp resolutions, a
/// timestamp offset, Simple Packet Blocks, and the damage a cut or corrupted file shows.
@Suite struct PcapngReaderTests {
    private func write(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "pcapng-\(UUID().uuidString).pcapng"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private static let ipv4: [UInt8] = [0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
    private static let ethernet: [UInt8] = [UInt8](repeating: 2, count: 12) + [0x08, 0x00] + ipv4

    /// Two sections: a big-endian one with an Ethernet interface counting 2^-20 s plus an offset of 100 s,
    /// and a little-endian one with a raw IP interface (LINKTYPE_RAW, 101) in nanoseconds and a Simple
    /// Packet Block. tshark reads the same file to the same times and frames.
    @Test func sectionsInBothByteOrdersWithMixedLinkTypesAndResolutionsAgreeWithTshark() async throws {
        var big = PcapngBuilder(bigEndian: true)
        big.section()
        big.interface(linkType: 1, options: [(9, [0x80 | 20]), (14, big.u64(100))])
        big.enhancedPacket(interface: 0, units: (1_700_000_000 << 20) + (1 << 19), Self.ethernet)
        var little = PcapngBuilder(bigEndian: false)
        little.section()
        little.interface(linkType: 101, options: [(9, [9])])
        little.enhancedPacket(interface: 0, units: 1_700_000_001_000_000_123, Self.ipv4)
        little.simplePacket(Self.ipv4 + [0xAA, 0xBB])
        let path = try write(big.bytes + little.bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let reader = try PcapReader(path: path)
        #expect(reader.linkType == .ethernet)
        var records: [(LinkType, Int64, [UInt8])] = []
        while let record = try reader.next() { records.append((record.linkType, record.timestampNanoseconds, Array(record.data))) }
        #expect(records.map(\.0) == [.ethernet, .raw, .raw])
        #expect(records.map(\.1).prefix(2) == [1_700_000_100_500_000_000, 1_700_000_001_000_000_123])
        #expect(records.map(\.2) == [Self.ethernet, Self.ipv4, Self.ipv4 + [0xAA, 0xBB]])

        let frames = try Tshark.fields(["frame.number", "frame.time_epoch", "frame.len", "ip.dst"], of: path)
        #expect(frames.count == 3)
        #expect(frames.first?["frame.time_epoch"] == "1700000100.500000000")
        #expect(frames.dropFirst().first?["frame.time_epoch"] == "1700000001.000000123")
        #expect(frames.map { $0["frame.len"] } == records.map { String($0.2.count) })
        #expect(frames.map { $0["ip.dst"] } == ["10.0.0.2", "10.0.0.2", "10.0.0.2"])
    }

    /// Each kind of damage ends reading with an error naming the file, the record and the block's offset,
    /// after the records before it.
    @Test(arguments: PcapngDamage.allCases)
    func damageIsATypedErrorAfterTheRecordsBeforeIt(_ damage: PcapngDamage) throws {
        var file = PcapngBuilder(bigEndian: false)
        file.section()
        file.interface(linkType: 101, options: [])
        file.enhancedPacket(interface: 0, units: 1, Self.ipv4)
        let goodLength = file.bytes.count
        switch damage {
        case .cutInsideABlock:
            file.enhancedPacket(interface: 0, units: 2, Self.ipv4)
            file.bytes.removeLast(6)
        case .trailingLengthDiffers:
            file.enhancedPacket(interface: 0, units: 2, Self.ipv4)
            file.bytes[file.bytes.count - 4] ^= 0x04
        case .unknownInterface:
            file.enhancedPacket(interface: 3, units: 2, Self.ipv4)
        case .lengthNotAMultipleOfFour:
            file.enhancedPacket(interface: 0, units: 2, Self.ipv4)
            file.bytes[goodLength + 4] = 0x31
        case .capturedLengthOverrunsTheBlock:
            file.enhancedPacket(interface: 0, units: 2, Self.ipv4)
            file.bytes[goodLength + 20] = 0xF0
        }
        let path = try write(file.bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = try PcapReader(path: path)
        #expect(try reader.next()?.data.count == Self.ipv4.count)
        let error = try #require(throws: PcapError.self) { try reader.next() }
        #expect(error.path == path)
        #expect(error.message.hasPrefix("record 2: pcapng block at byte \(goodLength):"), "\(error)")
    }

    @Test func aFileWithoutInterfacesOrWithAPacketFirstIsRefusedAtOpening() throws {
        var empty = PcapngBuilder(bigEndian: false)
        empty.section()
        var packetFirst = PcapngBuilder(bigEndian: false)
        packetFirst.section()
        packetFirst.simplePacket(Self.ipv4)
        for bytes in [empty.bytes, packetFirst.bytes] {
            let path = try write(bytes)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let error = try #require(throws: PcapError.self) { try PcapReader(path: path) }
            #expect(error.message.contains("Interface Description Block"), "\(error)")
        }
    }
}

enum PcapngDamage: CaseIterable, Sendable {
    case cutInsideABlock, trailingLengthDiffers, unknownInterface, lengthNotAMultipleOfFour, capturedLengthOverrunsTheBlock
}

/// Writes pcapng blocks in either byte order.
struct PcapngBuilder {
    var bytes: [UInt8] = []
    let bigEndian: Bool

    init(bigEndian: Bool) { self.bigEndian = bigEndian }

    mutating func section() {
        block(type: 0x0A0D_0D0A, body: u32(0x1A2B_3C4D) + u16(1) + u16(0) + [UInt8](repeating: 0xFF, count: 8))
    }

    mutating func interface(linkType: UInt16, options: [(UInt16, [UInt8])]) {
        var body = u16(linkType) + u16(0) + u32(0)
        for (code, value) in options { body += u16(code) + u16(UInt16(value.count)) + padded(value) }
        if !options.isEmpty { body += u16(0) + u16(0) }
        block(type: 1, body: body)
    }

    mutating func enhancedPacket(interface: UInt32, units: UInt64, _ data: [UInt8]) {
        block(type: 6, body: u32(interface) + u32(UInt32(units >> 32)) + u32(UInt32(truncatingIfNeeded: units))
                  + u32(UInt32(data.count)) + u32(UInt32(data.count)) + padded(data))
    }

    mutating func simplePacket(_ data: [UInt8]) {
        block(type: 3, body: u32(UInt32(data.count)) + padded(data))
    }

    func u64(_ value: UInt64) -> [UInt8] {
        bigEndian ? withUnsafeBytes(of: value.bigEndian, Array.init) : withUnsafeBytes(of: value.littleEndian, Array.init)
    }

    private mutating func block(type: UInt32, body: [UInt8]) {
        let length = u32(UInt32(12 + body.count))
        bytes += u32(type) + length + body + length
    }

    private func padded(_ value: [UInt8]) -> [UInt8] { value + [UInt8](repeating: 0, count: (4 - value.count % 4) % 4) }
    private func u32(_ value: UInt32) -> [UInt8] {
        bigEndian ? withUnsafeBytes(of: value.bigEndian, Array.init) : withUnsafeBytes(of: value.littleEndian, Array.init)
    }
    private func u16(_ value: UInt16) -> [UInt8] {
        bigEndian ? withUnsafeBytes(of: value.bigEndian, Array.init) : withUnsafeBytes(of: value.littleEndian, Array.init)
    }
}
