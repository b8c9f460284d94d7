import IpPacket

/// A bounded buffer of packets waiting for a connection or a NAT confirmation (spec `tunnel-dns.md` §4.4.4):
/// a byte-identical duplicate is not added, a retransmitted TCP SYN replaces the buffered one, and when full
/// the oldest packet is overwritten and counted as dropped.
public struct UniquePacketRing: Sendable {
    public let capacity: Int
    public private(set) var packets: [IpPacket] = []
    /// Packets overwritten because the ring was full.
    public private(set) var droppedCount = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "a ring holds at least one packet")
        self.capacity = capacity
    }

    public mutating func append(_ packet: IpPacket) {
        if let syn = Self.synIdentity(packet), let index = packets.firstIndex(where: { Self.synIdentity($0) == syn }) {
            packets[index] = packet
            return
        }
        guard !packets.contains(packet) else { return }
        if packets.count == capacity {
            packets.removeFirst()
            droppedCount += 1
        }
        packets.append(packet)
    }

    /// Empties the ring, returning its packets oldest first.
    public mutating func drain() -> [IpPacket] {
        defer { packets.removeAll() }
        return packets
    }

    private struct SynIdentity: Equatable {
        var source: IpAddress, destination: IpAddress
        var sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32
    }

    private static func synIdentity(_ packet: IpPacket) -> SynIdentity? {
        guard let tcp = packet.tcp, tcp.flags.contains(.syn), !tcp.flags.contains(.ack) else { return nil }
        return SynIdentity(source: packet.source, destination: packet.destination, sourcePort: tcp.sourcePort,
                           destinationPort: tcp.destinationPort, sequenceNumber: tcp.sequenceNumber)
    }
}
