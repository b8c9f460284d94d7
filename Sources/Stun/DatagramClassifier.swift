/// What a UDP datagram is, from its first bytes alone (spec `snownet.md` §4.1, RFC 7983).
public enum DatagramKind: Hashable, Sendable {
    /// A STUN message: first byte 0–3, the magic cookie, and a length that matches.
    case stun
    /// TURN ChannelData: first byte 0x40–0x4F and a length that fits.
    case channelData
    /// Anything else (WireGuard, for this toolkit).
    case other

    /// Classifies without decoding: a handful of loads and compares.
    public static func classify(_ datagram: UnsafeRawBufferPointer) -> DatagramKind {
        guard let first = datagram.first else { return .other }
        switch first {
        case 0x00...0x03:
            guard datagram.count >= StunConstants.headerLength,
                  UInt32(bigEndian: datagram.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) == StunConstants.magicCookie,
                  Int(UInt16(bigEndian: datagram.loadUnaligned(fromByteOffset: 2, as: UInt16.self))) + StunConstants.headerLength
                    == datagram.count
            else { return .other }
            return .stun
        case 0x40...0x4F:
            guard datagram.count >= 4,
                  Int(UInt16(bigEndian: datagram.loadUnaligned(fromByteOffset: 2, as: UInt16.self))) + 4 <= datagram.count
            else { return .other }
            return .channelData
        default:
            return .other
        }
    }
}
