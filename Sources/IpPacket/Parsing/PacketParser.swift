/// Where validation found the transport layer.
@usableFromInline
struct PacketLayout {
    @usableFromInline var version: IpVersion
    @usableFromInline var nextHeader: UInt8
    @usableFromInline var transportOffset: Int
    @usableFromInline var transport: IpPacket.Transport

    @inlinable
    init(version: IpVersion, nextHeader: UInt8, transportOffset: Int, transport: IpPacket.Transport) {
        self.version = version
        self.nextHeader = nextHeader
        self.transportOffset = transportOffset
        self.transport = transport
    }
}

/// The strict construction rules of Firezone's HEAD `ip-packet` (spec `tunnel-dns.md` §2.2).
///
/// The success path computes offsets only; an error reads its context from the bytes when it is thrown.
@usableFromInline
enum PacketParser {
    @inlinable @inline(__always)
    static func validate(_ bytes: UnsafeRawBufferPointer) throws(IpPacketError) -> PacketLayout {
        let ip = try validateIpHeader(bytes)
        let transport = try validateTransport(bytes, ip: ip)
        return PacketLayout(
            version: ip.version, nextHeader: ip.nextHeader, transportOffset: ip.transportOffset, transport: transport)
    }

    /// The IP layer of a validated or quoted packet: where its transport starts and what it is.
    @usableFromInline
    struct IpLayer {
        @usableFromInline var version: IpVersion
        @usableFromInline var nextHeader: UInt8
        @usableFromInline var transportOffset: Int
        @usableFromInline var isFragment: Bool

        @inlinable
        init(version: IpVersion, nextHeader: UInt8, transportOffset: Int, isFragment: Bool) {
            self.version = version
            self.nextHeader = nextHeader
            self.transportOffset = transportOffset
            self.isFragment = isFragment
        }
    }

    @inlinable @inline(__always)
    static func validateIpHeader(_ bytes: UnsafeRawBufferPointer) throws(IpPacketError) -> IpLayer {
        guard let first = bytes.first else { throw IpPacketError(.empty) }
        let ip: IpLayer
        switch first >> 4 {
        case 4: ip = try ipv4Layer(bytes, requireExactLength: true)
        case 6: ip = try ipv6Layer(bytes, requireExactLength: true)
        default: throw IpPacketError(.unsupportedVersion(first >> 4))
        }
        guard !ip.isFragment else { throw error(.fragmented, bytes, nextHeader: ip.nextHeader) }
        return ip
    }

    /// IPv4: a complete header with IHL ≥ 5, and (when `requireExactLength`) total length equal to the
    /// packet's. An ICMP error's quoted packet is truncated, so its length is not checked.
    @inlinable @inline(__always)
    static func ipv4Layer(_ bytes: UnsafeRawBufferPointer, requireExactLength: Bool) throws(IpPacketError) -> IpLayer {
        guard bytes.count >= 20 else { throw error(.truncatedIPv4Header(length: bytes.count), bytes) }
        let ihl = bytes[0] & 0x0F
        guard ihl >= 5 else { throw error(.ihlTooSmall(ihl: ihl), bytes) }
        let headerLength = Int(ihl) * 4
        guard headerLength <= bytes.count else {
            throw error(.truncatedIPv4Options(headerLength: headerLength, length: bytes.count), bytes)
        }
        let totalLength = Int(bytes.uint16(at: 2))
        if requireExactLength, totalLength != bytes.count {
            throw error(.ipv4TotalLengthMismatch(totalLength: totalLength, length: bytes.count), bytes)
        }
        let flagsAndOffset = bytes.uint16(at: 6)
        let isFragment = flagsAndOffset & 0x2000 != 0 || flagsAndOffset & 0x1FFF != 0
        return IpLayer(version: .v4, nextHeader: bytes[9], transportOffset: headerLength, isFragment: isFragment)
    }

    /// IPv6: a complete fixed header, payload length + 40 equal to the packet's length (when
    /// `requireExactLength`), and complete extension headers.
    @inlinable @inline(__always)
    static func ipv6Layer(_ bytes: UnsafeRawBufferPointer, requireExactLength: Bool) throws(IpPacketError) -> IpLayer {
        guard bytes.count >= 40 else { throw error(.truncatedIPv6Header(length: bytes.count), bytes) }
        let payloadLength = Int(bytes.uint16(at: 4))
        if requireExactLength, payloadLength + 40 != bytes.count {
            throw error(.ipv6PayloadLengthMismatch(payloadLength: payloadLength, length: bytes.count), bytes)
        }
        var nextHeader = bytes[6]
        var offset = 40
        var isFragment = false
        while IPv6ExtensionHeader.isWalked(nextHeader) {
            let length = nextHeader == IPv6ExtensionHeader.fragment
                ? 8
                : offset + 2 <= bytes.count ? 8 + 8 * Int(bytes[offset + 1]) : 8
            guard offset + length <= bytes.count else {
                throw error(.truncatedExtensionHeader(header: nextHeader, offset: offset, length: bytes.count),
                            bytes, nextHeader: nextHeader)
            }
            if nextHeader == IPv6ExtensionHeader.fragment {
                let offsetAndFlags = bytes.uint16(at: offset + 2)
                // Only an atomic fragment (offset 0, no more fragments) is a whole packet.
                if offsetAndFlags >> 3 != 0 || offsetAndFlags & 1 != 0 { isFragment = true }
            }
            nextHeader = bytes[offset]
            offset += length
        }
        return IpLayer(version: .v6, nextHeader: nextHeader, transportOffset: offset, isFragment: isFragment)
    }

    @inlinable @inline(__always)
    static func validateTransport(_ bytes: UnsafeRawBufferPointer, ip: IpLayer) throws(IpPacketError) -> IpPacket.Transport {
        let at = ip.transportOffset
        let available = bytes.count - at
        func error(_ reason: IpPacketError.Reason) -> IpPacketError {
            PacketParser.error(reason, bytes, nextHeader: ip.nextHeader, transportOffset: at)
        }
        switch ip.nextHeader {
        case IpProtocolNumber.udp:
            guard available >= 8 else { throw error(.truncatedUdpHeader(available: available)) }
            let udpLength = Int(bytes.uint16(at: at + 4))
            guard udpLength == available else {
                throw error(.udpLengthMismatch(udpLength: udpLength, ipPayloadLength: available))
            }
            return .udp
        case IpProtocolNumber.tcp:
            guard available >= 20 else { throw error(.truncatedTcpHeader(available: available)) }
            let dataOffset = bytes[at + 12] >> 4
            guard dataOffset >= 5 else { throw error(.tcpDataOffsetTooSmall(dataOffset: dataOffset)) }
            guard Int(dataOffset) * 4 <= available else {
                throw error(.truncatedTcpOptions(headerLength: Int(dataOffset) * 4, available: available))
            }
            return .tcp
        case IpProtocolNumber.icmpv4:
            guard ip.version == .v4 else { throw error(.icmpv4InIPv6) }
            guard available >= 8 else { throw error(.truncatedIcmpHeader(available: available)) }
            return .icmpv4
        case IpProtocolNumber.icmpv6:
            guard ip.version == .v6 else { throw error(.icmpv6InIPv4) }
            guard available >= 8 else { throw error(.truncatedIcmpHeader(available: available)) }
            return .icmpv6
        default:
            return .other(ip.nextHeader)
        }
    }

    /// An error with whatever `bytes` reveal: version, addresses, protocol and transport header fields.
    /// Kept out of line so the validators inlined into the success path stay small.
    @usableFromInline @inline(never)
    static func error(
        _ reason: IpPacketError.Reason, _ bytes: UnsafeRawBufferPointer, nextHeader: UInt8? = nil,
        transportOffset: Int? = nil
    ) -> IpPacketError {
        IpPacketError(reason, context: IpPacketError.Context(reading: bytes, nextHeader: nextHeader,
                                                             transportOffset: transportOffset))
    }
}

extension IpPacketError.Context {
    /// Reads what it can: the version nibble, the addresses when the fixed header is complete, the protocol
    /// (IPv4's, or `nextHeader` where the parser got to), and the transport header's fields that are present.
    init(reading bytes: UnsafeRawBufferPointer, nextHeader: UInt8?, transportOffset: Int?) {
        self.init()
        guard let first = bytes.first, let version = IpVersion(rawValue: first >> 4) else { return }
        self.version = version
        switch version {
        case .v4 where bytes.count >= 20:
            source = .v4(IPv4Address(bytes.uint32(at: 12)))
            destination = .v4(IPv4Address(bytes.uint32(at: 16)))
            self.nextHeader = nextHeader ?? bytes[9]
        case .v6 where bytes.count >= 40:
            source = .v6(IPv6Address(high: bytes.uint64(at: 8), low: bytes.uint64(at: 16)))
            destination = .v6(IPv6Address(high: bytes.uint64(at: 24), low: bytes.uint64(at: 32)))
            self.nextHeader = nextHeader ?? bytes[6]
        default:
            return
        }
        guard let at = transportOffset, let protocolNumber = self.nextHeader else { return }
        let available = bytes.count - at
        guard available >= 4 else { return }
        let sourcePort = bytes.uint16(at: at)
        let destinationPort = bytes.uint16(at: at + 2)
        switch protocolNumber {
        case IpProtocolNumber.udp where available >= 8:
            transportHeader = .udp(sourcePort: sourcePort, destinationPort: destinationPort,
                                   length: bytes.uint16(at: at + 4), checksum: bytes.uint16(at: at + 6))
        case IpProtocolNumber.tcp where available >= 20:
            transportHeader = .tcp(sourcePort: sourcePort, destinationPort: destinationPort,
                                   sequenceNumber: bytes.uint32(at: at + 4), dataOffset: bytes[at + 12] >> 4)
        case IpProtocolNumber.udp, IpProtocolNumber.tcp:
            transportHeader = .ports(sourcePort: sourcePort, destinationPort: destinationPort)
        case IpProtocolNumber.icmpv4, IpProtocolNumber.icmpv6:
            transportHeader = .icmp(type: bytes[at], code: bytes[at + 1])
        default:
            break
        }
    }
}

/// IP protocol numbers the library interprets.
public enum IpProtocolNumber {
    public static let icmpv4: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let icmpv6: UInt8 = 58
    /// Firezone's p2p control protocol (a reserved value never seen in real traffic).
    public static let fzP2pControl: UInt8 = 0xFF
}

/// The IPv6 extension headers the parser walks (RFC 8200, RFC 6564); AH and ESP are not walked.
@usableFromInline
enum IPv6ExtensionHeader {
    @usableFromInline static let fragment: UInt8 = 44

    @inlinable
    static func isWalked(_ nextHeader: UInt8) -> Bool {
        switch nextHeader {
        case 0, 43, 44, 60, 135, 139, 140, 253, 254: true
        default: false
        }
    }
}

extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    func uint16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    func uint32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always)
    func uint64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
