import IpPacket

/// Firezone's p2p control packet (spec `tunnel-dns.md` §3.1): an IPv6 packet from `::` to `::` with next
/// header 0xFF, hop limit 0, an 8-byte header whose first byte is the event kind, and a JSON body.
public struct P2pControlMessage: Hashable, Sendable {
    /// The event kind (0 AssignedIps, 1 DomainStatus, 2 Goodbye; others are ignored by receivers).
    public var kind: UInt8
    /// The body after the 8-byte header, as packet offsets.
    public var bodyRange: Range<Int>

    /// The size of the control header that precedes the body.
    public static let headerSize = 8
}

extension IpPacket {
    /// The control message, when this packet matches the p2p control framing: next header 0xFF, source
    /// and destination `::`, and at least the 8-byte control header.
    public var p2pControl: P2pControlMessage? {
        guard version == .v6, nextHeader == IpProtocolNumber.fzP2pControl,
              source == .v6(.unspecified), destination == .v6(.unspecified),
              count - transportOffset >= P2pControlMessage.headerSize
        else { return nil }
        return P2pControlMessage(
            kind: withUnsafeBytes { $0[transportOffset] },
            bodyRange: (transportOffset + P2pControlMessage.headerSize)..<count)
    }

    /// Whether this packet is a p2p control message.
    public var isP2pControl: Bool { p2pControl != nil }

    /// Builds a p2p control packet of `kind` carrying `body` (UTF-8 JSON, possibly empty).
    public static func p2pControl(
        kind: UInt8, body: some Collection<UInt8>, pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        try build(source: .v6(.unspecified), destination: .v6(.unspecified), nextHeader: IpProtocolNumber.fzP2pControl,
                  ttl: 0, transportLength: P2pControlMessage.headerSize + body.count, pool: pool) { transport in
            transport[0] = kind
            UnsafeMutableRawBufferPointer(rebasing: transport[P2pControlMessage.headerSize...]).copyBytes(from: body)
        }
    }
}
