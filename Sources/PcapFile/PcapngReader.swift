#if canImport(Glibc)
import Glibc
#endif

/// Reads a pcapng file block by block: sections in either byte order, any number of interfaces, each with
/// its own link type, snap length, timestamp resolution and offset, and Enhanced, Simple and obsolete Packet
/// Blocks. libpcap refuses a file whose interfaces differ in link type (`dumpcap -i eth0 -i wg0` writes
/// those), so the toolkit reads pcapng itself.
final class PcapngReader {
    /// The first interface's link type.
    private(set) var linkType = LinkType.ethernet
    let path: String

    /// libpcap's limit for one block; a larger length is taken for damage rather than read.
    static let maximumBlockLength = 16 * 1024 * 1024

    private let file: UnsafeMutablePointer<FILE>
    private var bigEndian = false
    private var interfaces: [Interface] = []
    private var block: UnsafeMutableRawBufferPointer
    private var blockLength = 0
    private var blockStart: Int64 = 0

    struct Interface {
        var linkType: LinkType
        var snapLength: UInt32
        var resolution = TimestampResolution.decimal(6)
        var offsetSeconds: Int64 = 0
    }

    /// A packet block's contents; `data` is valid until the next call to `next()`.
    struct Packet {
        var linkType: LinkType
        var timestampNanoseconds: Int64
        var originalLength: Int
        var data: UnsafeRawBufferPointer
    }

    /// Whether the file at `path` starts like a pcapng file (a Section Header Block's type).
    static func looksLikePcapng(_ path: String) -> Bool {
        guard let file = fopen(path, "rb") else { return false }
        defer { fclose(file) }
        var magic: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        guard fread(&magic, 1, 4, file) == 4 else { return false }
        return magic == (0x0A, 0x0D, 0x0D, 0x0A)
    }

    init(path: String) throws(PcapError) {
        self.path = path
        guard let opened = fopen(path, "rb") else {
            throw PcapError(path: path, message: String(cString: strerror(errno)))
        }
        file = opened
        block = .allocate(byteCount: 4096, alignment: 8)
        // Every stored property is set: when this throws, deinit closes the file.
        guard try readBlock(), type == BlockType.sectionHeader else {
            throw error("the file does not start with a Section Header Block")
        }
        try readSectionHeader()
        while interfaces.isEmpty {
            guard try readBlock() else { throw error("the capture has no Interface Description Block") }
            if BlockType.packets.contains(type) { throw error("a packet block comes before any Interface Description Block") }
            try interpretNonPacketBlock()
        }
        linkType = interfaces[0].linkType
    }

    deinit {
        fclose(file)
        block.deallocate()
    }

    var bytesRead: Int64 { Int64(ftell(file)) }

    /// The next packet block's contents, or `nil` at the end of the file.
    func next() throws(PcapError) -> Packet? {
        while try readBlock() {
            if let packet = try interpretPacketBlock() { return packet }
            try interpretNonPacketBlock()
        }
        return nil
    }

    // MARK: Blocks

    private enum BlockType {
        static let sectionHeader: UInt32 = 0x0A0D_0D0A
        static let interfaceDescription: UInt32 = 1
        static let obsoletePacket: UInt32 = 2
        static let simplePacket: UInt32 = 3
        static let enhancedPacket: UInt32 = 6
        static let packets: Set<UInt32> = [obsoletePacket, simplePacket, enhancedPacket]
    }

    private var type: UInt32 { word(at: 0) }

    /// Reads the next whole block into `block`; `false` at a clean end of the file.
    private func readBlock() throws(PcapError) -> Bool {
        blockStart = Int64(ftell(file))
        let headerRead = fread(block.baseAddress, 1, 12, file)
        if headerRead == 0, feof(file) != 0 { return false }
        guard headerRead == 12 else { throw error("the file ends inside a block header") }
        if type == BlockType.sectionHeader {
            // A new section may change the byte order; its magic, right after the length, says which.
            switch word(at: 8, bigEndian: false) {
            case 0x1A2B_3C4D: bigEndian = false
            case 0x4D3C_2B1A: bigEndian = true
            default: throw error("a Section Header Block has no byte-order magic")
            }
        }
        let length = Int(word(at: 4))
        guard length >= 12, length % 4 == 0, length <= Self.maximumBlockLength else {
            throw error("block length \(length) is not a multiple of 4 between 12 and \(Self.maximumBlockLength)")
        }
        if length > block.count {
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 8)
            grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: block[..<12]))
            block.deallocate()
            block = grown
        }
        guard fread(block.baseAddress! + 12, 1, length - 12, file) == length - 12 else {
            throw error("the file ends inside a block of \(length) bytes")
        }
        blockLength = length
        guard word(at: length - 4) == UInt32(length) else { throw error("the block's trailing length differs from its leading one") }
        return true
    }

    private func interpretNonPacketBlock() throws(PcapError) {
        switch type {
        case BlockType.sectionHeader: try readSectionHeader()
        case BlockType.interfaceDescription: try readInterfaceDescription()
        default: break  // name resolution, statistics, decryption secrets, custom: not needed to read packets
        }
    }

    private func readSectionHeader() throws(PcapError) {
        guard blockLength >= 28 else { throw error("a Section Header Block of \(blockLength) bytes is too short") }
        let major = half(at: 12)
        guard major == 1 else { throw error("pcapng version \(major) is not 1") }
        interfaces = []
    }

    private func readInterfaceDescription() throws(PcapError) {
        guard blockLength >= 20 else { throw error("an Interface Description Block of \(blockLength) bytes is too short") }
        var interface = Interface(linkType: LinkType(fileValue: half(at: 8)), snapLength: word(at: 12))
        var offset = 16
        while offset + 4 <= blockLength - 4 {
            let code = half(at: offset), length = Int(half(at: offset + 2))
            let value = offset + 4
            guard value + length <= blockLength - 4 else { throw error("an interface option overruns its block") }
            switch (code, length) {
            case (0, _):
                offset = blockLength
                continue
            case (9, 1):
                guard let resolution = TimestampResolution(byte: block[value]) else {
                    throw error("interface \(interfaces.count) has a timestamp resolution (\(block[value])) finer than 64 bits can count")
                }
                interface.resolution = resolution
            case (14, 8):
                let (first, second) = (UInt64(word(at: value)), UInt64(word(at: value + 4)))
                interface.offsetSeconds = Int64(bitPattern: bigEndian ? first << 32 | second : second << 32 | first)
            default:
                break
            }
            offset = value + (length + 3) / 4 * 4
        }
        interfaces.append(interface)
    }

    private func interpretPacketBlock() throws(PcapError) -> Packet? {
        switch type {
        case BlockType.enhancedPacket:
            guard blockLength >= 32 else { throw error("an Enhanced Packet Block of \(blockLength) bytes is too short") }
            return try packet(interface: Int(word(at: 8)), high: word(at: 12), low: word(at: 16),
                              captured: Int(word(at: 20)), original: Int(word(at: 24)), dataAt: 28)
        case BlockType.obsoletePacket:
            guard blockLength >= 32 else { throw error("a Packet Block of \(blockLength) bytes is too short") }
            return try packet(interface: Int(half(at: 8)), high: word(at: 12), low: word(at: 16),
                              captured: Int(word(at: 20)), original: Int(word(at: 24)), dataAt: 28)
        case BlockType.simplePacket:
            guard blockLength >= 16 else { throw error("a Simple Packet Block of \(blockLength) bytes is too short") }
            guard let first = interfaces.first else { throw error("a Simple Packet Block comes before any interface") }
            let original = Int(word(at: 8))
            var captured = min(original, blockLength - 16)
            if first.snapLength > 0 { captured = min(captured, Int(first.snapLength)) }
            return try packet(interface: 0, high: 0, low: 0, captured: captured, original: original, dataAt: 12)
        default:
            return nil
        }
    }

    private func packet(interface index: Int, high: UInt32, low: UInt32, captured: Int, original: Int,
                        dataAt offset: Int) throws(PcapError) -> Packet {
        guard interfaces.indices.contains(index) else {
            throw error("a packet names interface \(index), but the section describes \(interfaces.count)")
        }
        guard captured <= blockLength - 4 - offset else {
            throw error("a packet of \(captured) captured bytes overruns its block of \(blockLength)")
        }
        let interface = interfaces[index]
        guard let timestamp = interface.resolution.nanoseconds(UInt64(high) << 32 | UInt64(low), offsetSeconds: interface.offsetSeconds) else {
            throw error("a packet's timestamp is before 1970 or beyond what nanoseconds since 1970 can count in 64 bits")
        }
        return Packet(linkType: interface.linkType, timestampNanoseconds: timestamp, originalLength: original,
                      data: UnsafeRawBufferPointer(rebasing: block[offset..<(offset + captured)]))
    }

    // MARK: Bytes

    private func word(at offset: Int, bigEndian: Bool? = nil) -> UInt32 {
        let value = block.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return bigEndian ?? self.bigEndian ? UInt32(bigEndian: value) : UInt32(littleEndian: value)
    }

    private func half(at offset: Int) -> UInt16 {
        let value = block.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: value) : UInt16(littleEndian: value)
    }

    private func error(_ message: String) -> PcapError {
        PcapError(path: path, message: "pcapng block at byte \(blockStart): \(message)")
    }
}

/// A pcapng interface's timestamp unit: 10^-n or 2^-n seconds.
enum TimestampResolution: Equatable {
    case decimal(Int)
    case binary(Int)

    init?(byte: UInt8) {
        let exponent = Int(byte & 0x7F)
        if byte & 0x80 == 0 {
            guard exponent <= 19 else { return nil }
            self = .decimal(exponent)
        } else {
            guard exponent <= 63 else { return nil }
            self = .binary(exponent)
        }
    }

    /// `units` of this resolution plus `offsetSeconds` as nanoseconds since 1970, or `nil` when that is
    /// negative or does not fit in 64 bits.
    func nanoseconds(_ units: UInt64, offsetSeconds: Int64) -> Int64? {
        let nanoseconds: UInt64
        switch self {
        case .decimal(let exponent) where exponent <= 9:
            let (product, overflowed) = units.multipliedReportingOverflow(by: Self.powerOfTen(9 - exponent))
            guard !overflowed else { return nil }
            nanoseconds = product
        case .decimal(let exponent):
            nanoseconds = units / Self.powerOfTen(exponent - 9)
        case .binary(let exponent):
            let (high, low) = units.multipliedFullWidth(by: 1_000_000_000)
            guard exponent > 0 else {
                guard high == 0 else { return nil }
                nanoseconds = low
                break
            }
            guard high >> exponent == 0 else { return nil }
            nanoseconds = high << (64 - exponent) | low >> exponent
        }
        guard nanoseconds <= UInt64(Int64.max) else { return nil }
        let (offset, offsetOverflowed) = offsetSeconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflowed) = Int64(nanoseconds).addingReportingOverflow(offset)
        guard !offsetOverflowed, !overflowed, total >= 0 else { return nil }
        return total
    }

    private static func powerOfTen(_ exponent: Int) -> UInt64 {
        (0..<exponent).reduce(1) { product, _ in product * 10 }
    }
}

extension LinkType {
    /// The link type for a file's LINKTYPE_ value. Files use LINKTYPE_ numbers, libpcap's API the platform's
    /// DLT_ numbers; they differ only where DLT_ numbers were never agreed between systems, of which raw IP
    /// (LINKTYPE_RAW 101, DLT_RAW 12 on Linux) is the one found in captures of tunnels.
    init(fileValue: UInt16) {
        self = fileValue == 101 ? .raw : LinkType(rawValue: Int32(fileValue))
    }
}
