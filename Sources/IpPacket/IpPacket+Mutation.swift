// Mutators. Each keeps every checksum of the packet correct with an incremental update (RFC 1624),
// copies the buffer first if a copy of the packet shares it, and never allocates otherwise.
extension IpPacket {
    /// Sets the source address; it must have the packet's version.
    public mutating func setSource(_ address: IpAddress) throws(IpPacketError) {
        try setAddress(address, at: version == .v4 ? 12 : 8)
    }

    /// Sets the destination address; it must have the packet's version.
    public mutating func setDestination(_ address: IpAddress) throws(IpPacketError) {
        try setAddress(address, at: version == .v4 ? 16 : 24)
    }

    /// Sets the TCP or UDP source port, or the identifier of an ICMP echo request or reply.
    /// Other packets are left unchanged.
    public mutating func setSourceKey(_ value: UInt16) {
        setTransportKey(value, portOffset: 0)
    }

    /// Sets the TCP or UDP destination port, or the identifier of an ICMP echo request or reply.
    /// Other packets are left unchanged.
    public mutating func setDestinationKey(_ value: UInt16) {
        setTransportKey(value, portOffset: 2)
    }

    /// Outbound DNS-resource NAT: a new destination address and a new source port (or echo identifier).
    public mutating func translateDestination(_ destination: IpAddress, sourceKey: UInt16) throws(IpPacketError) {
        try setDestination(destination)
        setSourceKey(sourceKey)
    }

    /// NAT of replies: a new source address and a new destination port (or echo identifier).
    public mutating func translateSource(_ source: IpAddress, destinationKey: UInt16) throws(IpPacketError) {
        try setSource(source)
        setDestinationKey(destinationKey)
    }

    /// Sets the IP header's ECN bits.
    public mutating func setEcn(_ ecn: Ecn) {
        makeStorageUnique()
        switch version {
        case .v4:
            let oldWord = readUInt16(at: 0)
            let newWord = oldWord & ~0b11 | UInt16(ecn.rawValue)
            patchIPv4HeaderChecksum(old: oldWord, new: newWord)
            writeUInt16(newWord, at: 0)
        case .v6:
            let byte = readUInt8(at: 1)
            writeUInt8(byte & ~0b0011_0000 | ecn.rawValue << 4, at: 1)
        }
    }

    /// Merges the ECN of the outer UDP datagram that carried this packet (RFC 6040 decapsulation):
    /// only an ECN-capable packet whose carrier was marked CE becomes CE; nothing is cleared or swapped.
    public mutating func applyEcnFromTransport(_ outer: Ecn) {
        guard outer == .ce, ecn == .ect0 || ecn == .ect1 else { return }
        setEcn(.ce)
    }

    /// Sets IPv4's time to live or IPv6's hop limit.
    public mutating func setTtl(_ ttl: UInt8) {
        makeStorageUnique()
        switch version {
        case .v4:
            let oldWord = readUInt16(at: 8)
            let newWord = UInt16(ttl) << 8 | oldWord & 0xFF
            patchIPv4HeaderChecksum(old: oldWord, new: newWord)
            writeUInt16(newWord, at: 8)
        case .v6:
            writeUInt8(ttl, at: 7)
        }
    }

    // MARK: Details

    private mutating func setAddress(_ address: IpAddress, at position: Int) throws(IpPacketError) {
        guard address.version == version else {
            throw IpPacketError(version == .v4 ? .notIPv4 : .notIPv6, context: errorContext)
        }
        makeStorageUnique()
        let old = readAddress(at: position)
        if version == .v4 {
            var checksum = IncrementalChecksum(checksum: readUInt16(at: 10))
            checksum.replace(old: old, new: address)
            writeUInt16(checksum.finalized, at: 10)
        }
        if let checksumOffset = pseudoHeaderChecksumOffset {
            var checksum = IncrementalChecksum(checksum: readUInt16(at: checksumOffset))
            checksum.replace(old: old, new: address)
            writeUInt16(checksum.finalized, at: checksumOffset)
        }
        writeAddress(address, at: position)
    }

    /// Where the checksum that covers the pseudo-header lives: TCP, UDP (unless an IPv4 "not computed"
    /// zero) and ICMPv6. ICMPv4 and opaque protocols have none.
    private var pseudoHeaderChecksumOffset: Int? {
        switch transport {
        case .tcp: return transportOffset + 16
        case .udp:
            guard version == .v6 || readUInt16(at: transportOffset + 6) != 0 else { return nil }
            return transportOffset + 6
        case .icmpv6: return transportOffset + 2
        case .icmpv4, .other: return nil
        }
    }

    private mutating func setTransportKey(_ value: UInt16, portOffset: Int) {
        let fieldOffset: Int
        let checksumOffset: Int?
        switch transport {
        case .tcp:
            fieldOffset = transportOffset + portOffset
            checksumOffset = transportOffset + 16
        case .udp:
            fieldOffset = transportOffset + portOffset
            checksumOffset = pseudoHeaderChecksumOffset
        case .icmpv4, .icmpv6:
            guard isEcho else { return }
            fieldOffset = transportOffset + 4
            checksumOffset = transportOffset + 2
        case .other:
            return
        }
        makeStorageUnique()
        if let checksumOffset {
            var checksum = IncrementalChecksum(checksum: readUInt16(at: checksumOffset))
            checksum.replace(old: readUInt16(at: fieldOffset), new: value)
            writeUInt16(checksum.finalized, at: checksumOffset)
        }
        writeUInt16(value, at: fieldOffset)
    }

    private func patchIPv4HeaderChecksum(old: UInt16, new: UInt16) {
        var checksum = IncrementalChecksum(checksum: readUInt16(at: 10))
        checksum.replace(old: old, new: new)
        writeUInt16(checksum.finalized, at: 10)
    }

    func readAddress(at position: Int) -> IpAddress {
        switch version {
        case .v4: .v4(IPv4Address(readUInt32(at: position)))
        case .v6: .v6(readIPv6Address(at: position))
        }
    }

    func writeAddress(_ address: IpAddress, at position: Int) {
        switch address {
        case .v4(let v4): writeUInt32(v4.value, at: position)
        case .v6(let v6): writeIPv6Address(v6, at: position)
        }
    }
}
