/// The fields of an IPv4 header, read from a validated packet.
public struct IPv4Header: Hashable, Sendable {
    public var headerLength: Int
    public var dscp: UInt8
    public var totalLength: UInt16
    public var identification: UInt16
    public var dontFragment: Bool
    public var ttl: UInt8
    public var `protocol`: UInt8
    public var checksum: UInt16
    /// The options between the fixed 20-byte header and the transport, as packet offsets.
    public var optionsRange: Range<Int>

    init(packet: IpPacket) {
        headerLength = packet.transportOffset
        dscp = packet.readUInt8(at: 1) >> 2
        totalLength = packet.readUInt16(at: 2)
        identification = packet.readUInt16(at: 4)
        dontFragment = packet.readUInt16(at: 6) & 0x4000 != 0
        ttl = packet.readUInt8(at: 8)
        `protocol` = packet.readUInt8(at: 9)
        checksum = packet.readUInt16(at: 10)
        optionsRange = 20..<packet.transportOffset
    }
}

/// The fields of an IPv6 fixed header, read from a validated packet.
public struct IPv6Header: Hashable, Sendable {
    public var trafficClass: UInt8
    public var flowLabel: UInt32
    public var payloadLength: UInt16
    /// The next header field of the fixed header (the first extension header, if any).
    public var firstNextHeader: UInt8
    public var hopLimit: UInt8
    /// The extension headers between the fixed header and the transport, as packet offsets.
    public var extensionHeadersRange: Range<Int>

    init(packet: IpPacket) {
        let first = packet.readUInt32(at: 0)
        trafficClass = UInt8(truncatingIfNeeded: first >> 20)
        flowLabel = first & 0xF_FFFF
        payloadLength = packet.readUInt16(at: 4)
        firstNextHeader = packet.readUInt8(at: 6)
        hopLimit = packet.readUInt8(at: 7)
        extensionHeadersRange = 40..<packet.transportOffset
    }
}
