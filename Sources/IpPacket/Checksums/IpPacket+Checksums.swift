extension IpPacket {
    /// Recomputes every checksum from scratch: the transport's (ICMPv6, ICMPv4, UDP or TCP) and then
    /// IPv4's header. Needed only for bytes written by another stack; the mutators keep checksums correct.
    /// A computed UDP checksum of zero is sent as 0xFFFF (RFC 768).
    public mutating func computeChecksums() {
        makeStorageUnique()
        if let offset = transportChecksumOffset {
            writeUInt16(0, at: offset)
            writeUInt16(expectedTransportChecksum, at: offset)
        }
        if version == .v4 {
            writeUInt16(0, at: 10)
            writeUInt16(expectedIPv4HeaderChecksum, at: 10)
        }
    }

    /// Whether every stored checksum equals a from-scratch computation, treating 0x0000 and 0xFFFF as
    /// equal and accepting IPv4 UDP's "not computed" zero.
    public var hasValidChecksums: Bool {
        if version == .v4, !InternetChecksum.equivalent(readUInt16(at: 10), expectedIPv4HeaderChecksum) {
            return false
        }
        guard let offset = transportChecksumOffset else { return true }
        let stored = readUInt16(at: offset)
        if transport == .udp, version == .v4, stored == 0 { return true }
        return InternetChecksum.equivalent(stored, expectedTransportChecksum)
    }

    /// The IPv4 header checksum the header should carry.
    public var expectedIPv4HeaderChecksum: UInt16 {
        let stored = readUInt16(at: 10)
        let header = UnsafeRawBufferPointer(start: start, count: transportOffset)
        // Sum with the stored field, then take it out again: the same as summing with the field zeroed.
        let sum = InternetChecksum.sum(header) + UInt64(~stored)
        return InternetChecksum.finalize(sum)
    }

    /// The transport checksum the packet should carry (UDP's computed zero given as 0xFFFF), or 0 for
    /// protocols without one.
    public var expectedTransportChecksum: UInt16 {
        guard let offset = transportChecksumOffset else { return 0 }
        let stored = readUInt16(at: offset)
        let segment = UnsafeRawBufferPointer(start: start + transportOffset, count: count - transportOffset)
        var sum = InternetChecksum.sum(segment) + UInt64(~stored)
        if transport != .icmpv4 {
            sum += pseudoHeaderSum
        }
        let checksum = InternetChecksum.finalize(sum)
        return transport == .udp && checksum == 0 ? 0xFFFF : checksum
    }

    private var transportChecksumOffset: Int? {
        switch transport {
        case .tcp: transportOffset + 16
        case .udp: transportOffset + 6
        case .icmpv4, .icmpv6: transportOffset + 2
        case .other: nil
        }
    }

    private var pseudoHeaderSum: UInt64 {
        let addressBytes = version == .v4 ? 8 : 32
        let addresses = UnsafeRawBufferPointer(start: start + (version == .v4 ? 12 : 8), count: addressBytes)
        let length = UInt64(count - transportOffset)
        return InternetChecksum.sum(addresses) + UInt64(nextHeader) + (length >> 16) + (length & 0xFFFF)
    }
}
