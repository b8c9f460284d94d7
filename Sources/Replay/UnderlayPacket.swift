import SansIO

/// What one IP packet of the underlay (the network between peers and relays) holds, parsed with that
/// network's limits: up to 65,535 bytes, any IPv4 options, IPv6 extension headers, fragments. The strict
/// 1280-byte rules of the tunnel apply to what WireGuard carries, not to these packets.
public enum UnderlayPacket {
    /// A whole UDP datagram; `payload` lies inside the bytes parsed.
    case udp(source: SocketAddress, destination: SocketAddress, payload: UnsafeRawBufferPointer)
    /// A fragment of a UDP datagram, to be put together with ``FragmentReassembler``.
    case fragment(FragmentReassembler.Fragment)
    /// A packet (or fragment) of another transport protocol.
    case otherProtocol(UInt8)

    /// The UDP protocol number, in IPv4's protocol field and IPv6's next header.
    static let udpProtocol: UInt8 = 17

    /// Parses the IP packet in `bytes`. Bytes after the length the IP header declares (Ethernet padding, a
    /// trailer) are ignored; a declared length beyond `bytes` is an error, so a frame cut by the snap length
    /// must be set aside before.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(UnderlayPacketError) -> UnderlayPacket {
        guard let first = bytes.first else { throw UnderlayPacketError("empty IP packet") }
        switch first >> 4 {
        case 4: return try parseIPv4(bytes)
        case 6: return try parseIPv6(bytes)
        default: throw UnderlayPacketError("IP version \(first >> 4)")
        }
    }

    private static func parseIPv4(_ bytes: UnsafeRawBufferPointer) throws(UnderlayPacketError) -> UnderlayPacket {
        guard bytes.count >= 20 else { throw UnderlayPacketError("IPv4 header cut short (\(bytes.count) bytes)") }
        let headerLength = Int(bytes[0] & 0x0F) * 4
        let totalLength = Int(bytes.uint16(at: 2))
        guard headerLength >= 20 else { throw UnderlayPacketError("IPv4 header length \(headerLength) below 20") }
        guard totalLength >= headerLength else {
            throw UnderlayPacketError("IPv4 total length \(totalLength) shorter than its header (\(headerLength))")
        }
        guard totalLength <= bytes.count else {
            throw UnderlayPacketError("IPv4 total length \(totalLength) beyond the frame's \(bytes.count) bytes")
        }
        let source = IpAddress.v4(IPv4Address(bytes.uint32(at: 12)))
        let destination = IpAddress.v4(IPv4Address(bytes.uint32(at: 16)))
        let transportProtocol = bytes[9]
        let flagsAndOffset = bytes.uint16(at: 6)
        let payload = UnsafeRawBufferPointer(rebasing: bytes[headerLength..<totalLength])
        let offset = Int(flagsAndOffset & 0x1FFF) * 8
        let moreFragments = flagsAndOffset & 0x2000 != 0
        guard offset == 0, !moreFragments else {
            guard transportProtocol == udpProtocol else { return .otherProtocol(transportProtocol) }
            let key = FragmentReassembler.Key(source: source, destination: destination,
                                              identification: UInt32(bytes.uint16(at: 4)), transportProtocol: transportProtocol)
            return .fragment(.init(key: key, offset: offset, isLast: !moreFragments, bytes: payload))
        }
        guard transportProtocol == udpProtocol else { return .otherProtocol(transportProtocol) }
        return try udp(payload, from: source, to: destination)
    }

    private static func parseIPv6(_ bytes: UnsafeRawBufferPointer) throws(UnderlayPacketError) -> UnderlayPacket {
        guard bytes.count >= 40 else { throw UnderlayPacketError("IPv6 header cut short (\(bytes.count) bytes)") }
        let payloadLength = Int(bytes.uint16(at: 4))
        var nextHeader = bytes[6]
        guard payloadLength > 0 || nextHeader != 0 else { throw UnderlayPacketError("IPv6 jumbogram (payload length 0)") }
        guard 40 + payloadLength <= bytes.count else {
            throw UnderlayPacketError("IPv6 payload length \(payloadLength) beyond the frame's \(bytes.count - 40) bytes")
        }
        let source = IpAddress.v6(IPv6Address(high: bytes.uint64(at: 8), low: bytes.uint64(at: 16)))
        let destination = IpAddress.v6(IPv6Address(high: bytes.uint64(at: 24), low: bytes.uint64(at: 32)))
        let end = 40 + payloadLength
        var offset = 40
        while true {
            switch nextHeader {
            case 0, 43, 60:  // hop-by-hop options, routing, destination options
                guard offset + 8 <= end else { throw UnderlayPacketError("IPv6 extension header \(nextHeader) cut short") }
                let length = (Int(bytes[offset + 1]) + 1) * 8
                guard offset + length <= end else { throw UnderlayPacketError("IPv6 extension header \(nextHeader) overruns the packet") }
                nextHeader = bytes[offset]
                offset += length
            case 44:  // fragment
                guard offset + 8 <= end else { throw UnderlayPacketError("IPv6 fragment header cut short") }
                let fragmentProtocol = bytes[offset]
                let offsetAndFlags = bytes.uint16(at: offset + 2)
                let fragmentOffset = Int(offsetAndFlags >> 3) * 8
                let moreFragments = offsetAndFlags & 1 != 0
                let payload = UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<end])
                guard fragmentOffset == 0, !moreFragments else {
                    guard fragmentProtocol == udpProtocol else { return .otherProtocol(fragmentProtocol) }
                    let key = FragmentReassembler.Key(source: source, destination: destination,
                                                      identification: bytes.uint32(at: offset + 4), transportProtocol: fragmentProtocol)
                    return .fragment(.init(key: key, offset: fragmentOffset, isLast: !moreFragments, bytes: payload))
                }
                // An atomic fragment (RFC 6946): a whole packet that merely carries the header.
                nextHeader = fragmentProtocol
                offset += 8
            case udpProtocol:
                return try udp(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), from: source, to: destination)
            default:
                return .otherProtocol(nextHeader)
            }
        }
    }

    /// The UDP datagram in `transport`, whose length field must fit.
    static func udp(_ transport: UnsafeRawBufferPointer, from source: IpAddress, to destination: IpAddress) throws(UnderlayPacketError) -> UnderlayPacket {
        guard transport.count >= 8 else { throw UnderlayPacketError("UDP header cut short (\(transport.count) bytes)") }
        let length = Int(transport.uint16(at: 4))
        guard length >= 8, length <= transport.count else {
            throw UnderlayPacketError("UDP length \(length) outside 8…\(transport.count)")
        }
        return .udp(source: SocketAddress(ip: source, port: transport.uint16(at: 0)),
                    destination: SocketAddress(ip: destination, port: transport.uint16(at: 2)),
                    payload: UnsafeRawBufferPointer(rebasing: transport[8..<length]))
    }
}

/// An underlay packet that no network would carry: the reason, for the report.
public struct UnderlayPacketError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension UnsafeRawBufferPointer {
    func uint16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    func uint32(at offset: Int) -> UInt32 {
        UInt32(uint16(at: offset)) << 16 | UInt32(uint16(at: offset + 2))
    }

    func uint64(at offset: Int) -> UInt64 {
        UInt64(uint32(at: offset)) << 32 | UInt64(uint32(at: offset + 4))
    }
}
