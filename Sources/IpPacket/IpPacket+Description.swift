extension IpPacket: CustomStringConvertible {
    /// One line for logs: addresses, protocol, and the transport's essentials, e.g.
    /// `IPv4 10.0.0.1 -> 10.0.0.2 TCP 40000 -> 443 seq 1 len 0 syn`.
    public var description: String {
        var text = "\(version) \(source) -> \(destination) \(IpProtocolName.name(of: nextHeader))"
        if let tcp {
            text += " \(tcp.sourcePort) -> \(tcp.destinationPort) seq \(tcp.sequenceNumber) len \(tcp.payloadRange.count)"
            let flags = tcp.flags.intersection([.syn, .rst, .fin])
            if !flags.isEmpty { text += " \(flags)" }
        } else if let udp {
            text += " \(udp.sourcePort) -> \(udp.destinationPort) len \(udp.payloadRange.count)"
        } else if let icmp {
            text += " type \(icmp.type) code \(icmp.code)"
        }
        if ecn != .notEct { text += " ecn \(ecn)" }
        return text
    }

    /// A copy of the bytes in `range` (packet offsets, e.g. a header's `payloadRange`); allocates.
    public func bytes(in range: Range<Int>) -> [UInt8] {
        withUnsafeBytes { Array($0[range.clamped(to: 0..<count)]) }
    }
}
