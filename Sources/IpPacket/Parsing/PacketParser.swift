/// Where validation found the transport layer.
struct PacketLayout {
    var version: IpVersion
    var nextHeader: UInt8
    var transportOffset: Int
    var transport: IpPacket.Transport
}

/// The strict construction rules of Firezone's HEAD `ip-packet` (spec `tunnel-dns.md` §2.2).
enum PacketParser {
    static func validate(_ bytes: UnsafeRawBufferPointer) throws(IpPacketError) -> PacketLayout {
        let ip = try validateIpHeader(bytes)
        let transport = try validateTransport(bytes, ip: ip)
        return PacketLayout(
            version: ip.context.version ?? .v4, nextHeader: ip.nextHeader,
            transportOffset: ip.transportOffset, transport: transport
        )
    }

    /// The IP layer of a validated or embedded packet: where its transport starts and what it is.
    struct IpLayer {
        var context: IpPacketError.Context
        var nextHeader: UInt8
        var transportOffset: Int
        var isFragment: Bool
    }

    static func validateIpHeader(_ bytes: UnsafeRawBufferPointer) throws(IpPacketError) -> IpLayer {
        guard let first = bytes.first else { throw IpPacketError(.empty) }
        switch first >> 4 {
        case 4:
            let ip = try ipv4Layer(bytes, requireExactLength: true)
            guard !ip.isFragment else { throw IpPacketError(.fragmented, context: ip.context) }
            return ip
        case 6:
            let ip = try ipv6Layer(bytes, requireExactLength: true)
            guard !ip.isFragment else { throw IpPacketError(.fragmented, context: ip.context) }
            return ip
        default:
            throw IpPacketError(.unsupportedVersion(first >> 4))
        }
    }

    /// IPv4: a complete header with IHL ≥ 5, and (when `requireExactLength`) total length equal to the
    /// packet's. An ICMP error's embedded packet is truncated, so its length is not checked.
    static func ipv4Layer(_ bytes: UnsafeRawBufferPointer, requireExactLength: Bool) throws(IpPacketError) -> IpLayer {
        var context = IpPacketError.Context(version: .v4)
        guard bytes.count >= 20 else { throw IpPacketError(.truncatedIPv4Header(length: bytes.count), context: context) }
        context.source = .v4(IPv4Address(bytes.uint32(at: 12)))
        context.destination = .v4(IPv4Address(bytes.uint32(at: 16)))
        context.nextHeader = bytes[9]
        let ihl = bytes[0] & 0x0F
        guard ihl >= 5 else { throw IpPacketError(.ihlTooSmall(ihl: ihl), context: context) }
        let headerLength = Int(ihl) * 4
        guard headerLength <= bytes.count else {
            throw IpPacketError(.truncatedIPv4Options(headerLength: headerLength, length: bytes.count), context: context)
        }
        let totalLength = Int(bytes.uint16(at: 2))
        if requireExactLength, totalLength != bytes.count {
            throw IpPacketError(.ipv4TotalLengthMismatch(totalLength: totalLength, length: bytes.count), context: context)
        }
        let flagsAndOffset = bytes.uint16(at: 6)
        let moreFragments = flagsAndOffset & 0x2000 != 0
        let fragmentOffset = flagsAndOffset & 0x1FFF
        return IpLayer(
            context: context, nextHeader: bytes[9], transportOffset: headerLength,
            isFragment: moreFragments || fragmentOffset != 0
        )
    }

    /// IPv6: a complete fixed header, payload length + 40 equal to the packet's length (when
    /// `requireExactLength`), and complete extension headers.
    static func ipv6Layer(_ bytes: UnsafeRawBufferPointer, requireExactLength: Bool) throws(IpPacketError) -> IpLayer {
        var context = IpPacketError.Context(version: .v6)
        guard bytes.count >= 40 else { throw IpPacketError(.truncatedIPv6Header(length: bytes.count), context: context) }
        context.source = .v6(IPv6Address(high: bytes.uint64(at: 8), low: bytes.uint64(at: 16)))
        context.destination = .v6(IPv6Address(high: bytes.uint64(at: 24), low: bytes.uint64(at: 32)))
        let payloadLength = Int(bytes.uint16(at: 4))
        if requireExactLength, payloadLength + 40 != bytes.count {
            throw IpPacketError(
                .ipv6PayloadLengthMismatch(payloadLength: payloadLength, length: bytes.count), context: context)
        }
        var nextHeader = bytes[6]
        var offset = 40
        var isFragment = false
        while true {
            context.nextHeader = nextHeader
            if nextHeader == IPv6ExtensionHeader.fragment {
                guard offset + 8 <= bytes.count else {
                    throw IpPacketError(
                        .truncatedExtensionHeader(header: nextHeader, offset: offset, length: bytes.count),
                        context: context)
                }
                let offsetAndFlags = bytes.uint16(at: offset + 2)
                if offsetAndFlags >> 3 != 0 || offsetAndFlags & 1 != 0 { isFragment = true }
                nextHeader = bytes[offset]
                offset += 8
            } else if IPv6ExtensionHeader.isWalked(nextHeader) {
                guard offset + 2 <= bytes.count, offset + 8 + 8 * Int(bytes[offset + 1]) <= bytes.count else {
                    throw IpPacketError(
                        .truncatedExtensionHeader(header: nextHeader, offset: offset, length: bytes.count),
                        context: context)
                }
                let length = 8 + 8 * Int(bytes[offset + 1])
                nextHeader = bytes[offset]
                offset += length
            } else {
                break
            }
        }
        return IpLayer(context: context, nextHeader: nextHeader, transportOffset: offset, isFragment: isFragment)
    }

    static func validateTransport(_ bytes: UnsafeRawBufferPointer, ip: IpLayer) throws(IpPacketError) -> IpPacket.Transport {
        let available = bytes.count - ip.transportOffset
        var context = ip.context
        let version = context.version ?? .v4
        switch ip.nextHeader {
        case IpProtocolNumber.udp:
            guard available >= 8 else {
                context.transportHeader = portsSummary(bytes, at: ip.transportOffset)
                throw IpPacketError(.truncatedUdpHeader(available: available), context: context)
            }
            let udpLength = Int(bytes.uint16(at: ip.transportOffset + 4))
            guard udpLength == available else {
                context.transportHeader = .udp(
                    sourcePort: bytes.uint16(at: ip.transportOffset), destinationPort: bytes.uint16(at: ip.transportOffset + 2),
                    length: UInt16(udpLength), checksum: bytes.uint16(at: ip.transportOffset + 6))
                throw IpPacketError(.udpLengthMismatch(udpLength: udpLength, ipPayloadLength: available), context: context)
            }
            return .udp
        case IpProtocolNumber.tcp:
            guard available >= 20 else {
                context.transportHeader = portsSummary(bytes, at: ip.transportOffset)
                throw IpPacketError(.truncatedTcpHeader(available: available), context: context)
            }
            let dataOffset = bytes[ip.transportOffset + 12] >> 4
            context.transportHeader = .tcp(
                sourcePort: bytes.uint16(at: ip.transportOffset), destinationPort: bytes.uint16(at: ip.transportOffset + 2),
                sequenceNumber: bytes.uint32(at: ip.transportOffset + 4), dataOffset: dataOffset)
            guard dataOffset >= 5 else {
                throw IpPacketError(.tcpDataOffsetTooSmall(dataOffset: dataOffset), context: context)
            }
            guard Int(dataOffset) * 4 <= available else {
                throw IpPacketError(
                    .truncatedTcpOptions(headerLength: Int(dataOffset) * 4, available: available), context: context)
            }
            return .tcp
        case IpProtocolNumber.icmpv4:
            guard version == .v4 else { throw IpPacketError(.icmpv4InIPv6, context: context) }
            guard available >= 8 else { throw IpPacketError(.truncatedIcmpHeader(available: available), context: context) }
            return .icmpv4
        case IpProtocolNumber.icmpv6:
            guard version == .v6 else { throw IpPacketError(.icmpv6InIPv4, context: context) }
            guard available >= 8 else { throw IpPacketError(.truncatedIcmpHeader(available: available), context: context) }
            return .icmpv6
        default:
            return .other(ip.nextHeader)
        }
    }

    private static func portsSummary(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> IpPacketError.TransportHeaderSummary? {
        guard offset + 4 <= bytes.count else { return nil }
        return .ports(sourcePort: bytes.uint16(at: offset), destinationPort: bytes.uint16(at: offset + 2))
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
enum IPv6ExtensionHeader {
    static let fragment: UInt8 = 44

    static func isWalked(_ nextHeader: UInt8) -> Bool {
        switch nextHeader {
        case 0, 43, 60, 135, 139, 140, 253, 254: true
        default: false
        }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func uint16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    func uint32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    func uint64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
