/// A capture's link-layer header type (libpcap's DLT values as `pcap_datalink` reports them).
public struct LinkType: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// BSD loopback: a 4-byte host-order address family.
    public static let null = LinkType(rawValue: 0)
    public static let ethernet = LinkType(rawValue: 1)
    /// Raw IP, no link-layer header (DLT_RAW on Linux).
    public static let raw = LinkType(rawValue: 12)
    /// OpenBSD loopback: a 4-byte network-order address family.
    public static let loop = LinkType(rawValue: 108)
    /// Linux cooked capture v1 (`tcpdump -i any`).
    public static let linuxSll = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    /// Linux cooked capture v2.
    public static let linuxSll2 = LinkType(rawValue: 276)

    public var description: String {
        switch self {
        case .null: "NULL"
        case .ethernet: "EN10MB"
        case .raw: "RAW"
        case .loop: "LOOP"
        case .linuxSll: "LINUX_SLL"
        case .ipv4: "IPV4"
        case .ipv6: "IPV6"
        case .linuxSll2: "LINUX_SLL2"
        default: "DLT \(rawValue)"
        }
    }
}

/// Finds the IP packet inside a captured frame.
public enum LinkLayer {
    /// The IP packet in `frame`, or `nil` when the frame carries something else (ARP, LLDP, …) or the link
    /// type is not supported. Ethernet's minimum-frame padding after a short IP packet is cut off using
    /// the IP header's length field, as a receiving kernel does; any other trailing bytes are kept so the
    /// IP parser can reject them.
    public static func ipPacket(in frame: UnsafeRawBufferPointer, linkType: LinkType) -> UnsafeRawBufferPointer? {
        switch linkType {
        case .raw, .ipv4, .ipv6:
            return frame
        case .ethernet:
            var offset = 12
            var etherType = uint16(frame, at: offset)
            while etherType == 0x8100 || etherType == 0x88A8 {  // 802.1Q / 802.1ad tags
                offset += 4
                etherType = uint16(frame, at: offset)
            }
            guard etherType == 0x0800 || etherType == 0x86DD, offset + 2 <= frame.count else { return nil }
            return withoutEthernetPadding(UnsafeRawBufferPointer(rebasing: frame[(offset + 2)...]))
        case .linuxSll:
            guard let protocolType = uint16(frame, at: 14), protocolType == 0x0800 || protocolType == 0x86DD,
                  frame.count >= 16 else { return nil }
            return UnsafeRawBufferPointer(rebasing: frame[16...])
        case .linuxSll2:
            guard let protocolType = uint16(frame, at: 0), protocolType == 0x0800 || protocolType == 0x86DD,
                  frame.count >= 20 else { return nil }
            return UnsafeRawBufferPointer(rebasing: frame[20...])
        case .null, .loop:
            guard frame.count >= 4 else { return nil }
            return UnsafeRawBufferPointer(rebasing: frame[4...])
        default:
            return nil
        }
    }

    private static func withoutEthernetPadding(_ packet: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        // Ethernet pads frames to 60 bytes, i.e. IP packets to 46.
        guard packet.count <= 46, let first = packet.first else { return packet }
        let declared: Int?
        switch first >> 4 {
        case 4: declared = uint16(packet, at: 2).map(Int.init)
        case 6: declared = uint16(packet, at: 4).map { Int($0) + 40 }
        default: declared = nil
        }
        guard let declared, declared < packet.count else { return packet }
        return UnsafeRawBufferPointer(rebasing: packet[..<declared])
    }

    private static func uint16(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt16? {
        guard offset >= 0, offset + 2 <= bytes.count else { return nil }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
}
