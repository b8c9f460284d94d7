/// The fields of a UDP header, read from a validated packet.
public struct UdpHeader: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var length: UInt16
    public var checksum: UInt16
    /// The datagram's payload, as packet offsets.
    public var payloadRange: Range<Int>

    @inlinable
    init(sourcePort: UInt16, destinationPort: UInt16, length: UInt16, checksum: UInt16, payloadRange: Range<Int>) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.length = length
        self.checksum = checksum
        self.payloadRange = payloadRange
    }
}

/// The fields of a TCP header, read from a validated packet.
public struct TcpHeader: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    /// The header's length in bytes (data offset × 4).
    public var headerLength: Int
    public var flags: TcpFlags
    public var window: UInt16
    public var checksum: UInt16
    public var urgentPointer: UInt16
    /// The options after the fixed 20 bytes, as packet offsets.
    public var optionsRange: Range<Int>
    /// The segment's payload, as packet offsets.
    public var payloadRange: Range<Int>

    @inlinable
    init(
        sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, acknowledgmentNumber: UInt32,
        headerLength: Int, flags: TcpFlags, window: UInt16, checksum: UInt16, urgentPointer: UInt16,
        optionsRange: Range<Int>, payloadRange: Range<Int>
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.headerLength = headerLength
        self.flags = flags
        self.window = window
        self.checksum = checksum
        self.urgentPointer = urgentPointer
        self.optionsRange = optionsRange
        self.payloadRange = payloadRange
    }
}

/// TCP's control bits.
public struct TcpFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TcpFlags(rawValue: 0x01)
    public static let syn = TcpFlags(rawValue: 0x02)
    public static let rst = TcpFlags(rawValue: 0x04)
    public static let psh = TcpFlags(rawValue: 0x08)
    public static let ack = TcpFlags(rawValue: 0x10)
    public static let urg = TcpFlags(rawValue: 0x20)
    public static let ece = TcpFlags(rawValue: 0x40)
    public static let cwr = TcpFlags(rawValue: 0x80)

    public var description: String {
        let names = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"]
        return names.indices.filter { rawValue & (1 << $0) != 0 }.map { names[$0] }.joined(separator: ",")
    }
}

/// The 8-byte header common to ICMPv4 and ICMPv6 messages.
public struct IcmpHeader: Hashable, Sendable {
    public var type: UInt8
    public var code: UInt8
    public var checksum: UInt16
    /// The four "rest of header" bytes as a big-endian integer.
    public var restOfHeader: UInt32
    /// The bytes after the 8-byte header, as packet offsets.
    public var payloadRange: Range<Int>

    @inlinable
    init(type: UInt8, code: UInt8, checksum: UInt16, restOfHeader: UInt32, payloadRange: Range<Int>) {
        self.type = type
        self.code = code
        self.checksum = checksum
        self.restOfHeader = restOfHeader
        self.payloadRange = payloadRange
    }
}

/// A routing and NAT key: a TCP or UDP port, or an ICMP echo identifier.
public enum TransportKey: Hashable, Sendable, CustomStringConvertible {
    case tcp(UInt16)
    case udp(UInt16)
    case icmpEcho(identifier: UInt16)

    /// The port or identifier.
    public var value: UInt16 {
        switch self {
        case .tcp(let port), .udp(let port): port
        case .icmpEcho(let identifier): identifier
        }
    }

    public var description: String {
        switch self {
        case .tcp(let port): "TCP \(port)"
        case .udp(let port): "UDP \(port)"
        case .icmpEcho(let identifier): "ICMP echo \(identifier)"
        }
    }
}

extension IpPacket {
    /// The UDP header, or `nil` when the packet is not UDP.
    @inlinable
    public var udp: UdpHeader? {
        guard transport == .udp else { return nil }
        let at = transportOffset
        return UdpHeader(
            sourcePort: readUInt16(at: at), destinationPort: readUInt16(at: at + 2),
            length: readUInt16(at: at + 4), checksum: readUInt16(at: at + 6),
            payloadRange: (at + 8)..<count)
    }

    /// The TCP header, or `nil` when the packet is not TCP.
    @inlinable
    public var tcp: TcpHeader? {
        guard transport == .tcp else { return nil }
        let at = transportOffset
        let headerLength = tcpHeaderLength
        return TcpHeader(
            sourcePort: readUInt16(at: at), destinationPort: readUInt16(at: at + 2),
            sequenceNumber: readUInt32(at: at + 4), acknowledgmentNumber: readUInt32(at: at + 8),
            headerLength: headerLength, flags: TcpFlags(rawValue: readUInt8(at: at + 13)),
            window: readUInt16(at: at + 14), checksum: readUInt16(at: at + 16),
            urgentPointer: readUInt16(at: at + 18), optionsRange: (at + 20)..<(at + headerLength),
            payloadRange: (at + headerLength)..<count)
    }

    /// The ICMP header of an ICMPv4 or ICMPv6 packet, or `nil` for other protocols.
    @inlinable
    public var icmp: IcmpHeader? {
        guard transport == .icmpv4 || transport == .icmpv6 else { return nil }
        let at = transportOffset
        return IcmpHeader(
            type: readUInt8(at: at), code: readUInt8(at: at + 1), checksum: readUInt16(at: at + 2),
            restOfHeader: readUInt32(at: at + 4), payloadRange: (at + 8)..<count)
    }

    @inlinable
    var tcpHeaderLength: Int {
        Int(readUInt8(at: transportOffset + 12) >> 4) * 4
    }

    /// The TCP or UDP source port, or the identifier of an ICMP echo request or reply.
    public var sourceKey: TransportKey {
        get throws(IpPacketError) { try transportKey(portOffset: 0) }
    }

    /// The TCP or UDP destination port, or the identifier of an ICMP echo request or reply.
    public var destinationKey: TransportKey {
        get throws(IpPacketError) { try transportKey(portOffset: 2) }
    }

    private func transportKey(portOffset: Int) throws(IpPacketError) -> TransportKey {
        switch transport {
        case .tcp: return .tcp(readUInt16(at: transportOffset + portOffset))
        case .udp: return .udp(readUInt16(at: transportOffset + portOffset))
        case .icmpv4, .icmpv6:
            guard let identifier = echoIdentifier else {
                let type = readUInt8(at: transportOffset)
                let reason: IpPacketError.Reason =
                    transport == .icmpv4 ? .unsupportedIcmpv4Type(type) : .unsupportedIcmpv6Type(type)
                throw IpPacketError(reason, context: errorContext)
            }
            return .icmpEcho(identifier: identifier)
        case .other(let nextHeader):
            throw IpPacketError(.unsupportedIpPayload(nextHeader), context: errorContext)
        }
    }

    /// The identifier of an ICMP echo request or reply (code 0), `nil` for any other packet.
    var echoIdentifier: UInt16? {
        guard isEcho else { return nil }
        return readUInt16(at: transportOffset + 4)
    }

    var isEcho: Bool {
        let type = readUInt8(at: transportOffset)
        let code = readUInt8(at: transportOffset + 1)
        switch transport {
        case .icmpv4: return code == 0 && (type == 0 || type == 8)
        case .icmpv6: return code == 0 && (type == 128 || type == 129)
        default: return false
        }
    }

    /// What an error about this packet should say about it.
    var errorContext: IpPacketError.Context {
        IpPacketError.Context(version: version, source: source, destination: destination, nextHeader: nextHeader)
    }
}
