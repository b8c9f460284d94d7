/// The header before every packet on a TUN device opened with `IFF_VNET_HDR` (`struct virtio_net_hdr`, the
/// machine's byte order): whether the packet is a TCP super-packet to cut at `gsoSize`, and whether its
/// transport checksum is still partial.
public struct VirtioNetHeader: Equatable, Sendable {
    public static let size = 10
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum field at `checksumStart + checksumOffset` holds only the
    /// pseudo-header's sum; the rest is to be summed from `checksumStart` on.
    public static let needsChecksum: UInt8 = 1

    public enum GsoType: UInt8, Sendable {
        case none = 0
        case tcpV4 = 1
        case udp = 3
        case tcpV6 = 4
        case udpL4 = 5
    }

    /// `VIRTIO_NET_HDR_GSO_ECN`, or-ed into the GSO type.
    static let gsoEcnBit: UInt8 = 0x80

    public var flags: UInt8 = 0
    public var gsoTypeValue: UInt8 = 0
    public var headerLength: UInt16 = 0
    public var gsoSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0

    public init() {}

    /// Reads the first ``size`` bytes of `bytes`, which holds at least that many.
    public init(reading bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= Self.size)
        flags = bytes[0]
        gsoTypeValue = bytes[1]
        headerLength = bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
        gsoSize = bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
        checksumStart = bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        checksumOffset = bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
    }

    /// The GSO type without the ECN bit; `nil` for a type this code does not know.
    public var gsoType: GsoType? { GsoType(rawValue: gsoTypeValue & ~Self.gsoEcnBit) }

    public var needsChecksumCompletion: Bool { flags & Self.needsChecksum != 0 }

    /// Writes the header into the first ``size`` bytes of `bytes`.
    public func write(to bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= Self.size)
        bytes[0] = flags
        bytes[1] = gsoTypeValue
        bytes.storeBytes(of: headerLength, toByteOffset: 2, as: UInt16.self)
        bytes.storeBytes(of: gsoSize, toByteOffset: 4, as: UInt16.self)
        bytes.storeBytes(of: checksumStart, toByteOffset: 6, as: UInt16.self)
        bytes.storeBytes(of: checksumOffset, toByteOffset: 8, as: UInt16.self)
    }

    /// A TCP super-packet for the kernel to cut into `gsoSize`-byte segments, its checksum partial.
    static func tcpSuperPacket(ipv6: Bool, headersLength: Int, transportOffset: Int, gsoSize: Int) -> VirtioNetHeader {
        var header = VirtioNetHeader()
        header.flags = needsChecksum
        header.gsoTypeValue = (ipv6 ? GsoType.tcpV6 : GsoType.tcpV4).rawValue
        header.headerLength = UInt16(headersLength)
        header.gsoSize = UInt16(gsoSize)
        header.checksumStart = UInt16(transportOffset)
        header.checksumOffset = 16
        return header
    }
}
