import IpPacket

/// The resources behind a simulated gateway, as the gateway's kernel would deliver to them.
enum ResourceHost {
    /// Echoes UDP with its payload and answers an ICMPv4 echo request; anything else goes unanswered.
    static func echo(_ packet: IpPacket) -> IpPacket? {
        if let udp = packet.udp {
            return try? IpPacket.udp(source: packet.destination, destination: packet.source, sourcePort: udp.destinationPort,
                                     destinationPort: udp.sourcePort, payload: Array(packet.bytes[(packet.transportOffset + 8)...]))
        }
        if packet.isIcmpv4, case .icmpEcho(let identifier)? = try? packet.sourceKey {
            return try? IpPacket.icmpEchoReply(source: packet.destination, destination: packet.source, identifier: identifier,
                                               sequence: 1, payload: [])
        }
        return nil
    }
}
