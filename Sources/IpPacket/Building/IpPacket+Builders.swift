// Builders. Each writes headers and payload into a pool buffer, computes every checksum and validates the
// result with the strict parser, so whatever a builder returns parses. TTL / hop limit is 64 unless noted.
extension IpPacket {
    /// A UDP datagram.
    public static func udp(
        source: IpAddress, destination: IpAddress, sourcePort: UInt16, destinationPort: UInt16,
        payload: some Collection<UInt8>, pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        let length = 8 + payload.count
        return try build(source: source, destination: destination, nextHeader: IpProtocolNumber.udp,
                         transportLength: length, pool: pool) { transport in
            transport.storeBytes(of: sourcePort.bigEndian, toByteOffset: 0, as: UInt16.self)
            transport.storeBytes(of: destinationPort.bigEndian, toByteOffset: 2, as: UInt16.self)
            transport.storeBytes(of: UInt16(truncatingIfNeeded: length).bigEndian, toByteOffset: 4, as: UInt16.self)
            UnsafeMutableRawBufferPointer(rebasing: transport[8...]).copyBytes(from: payload)
        }
    }

    /// A TCP segment with window 128; `options` must be a multiple of 4 bytes, at most 40.
    public static func tcp(
        source: IpAddress, destination: IpAddress, sourcePort: UInt16, destinationPort: UInt16,
        sequenceNumber: UInt32 = 0, acknowledgmentNumber: UInt32 = 0, flags: TcpFlags, window: UInt16 = 128,
        options: some Collection<UInt8> = [UInt8](), payload: some Collection<UInt8>,
        pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        guard options.count % 4 == 0 else { throw IpPacketError(.tcpOptionsNotMultipleOfFour(length: options.count)) }
        guard options.count <= 40 else { throw IpPacketError(.tcpOptionsTooLong(length: options.count)) }
        let headerLength = 20 + options.count
        return try build(source: source, destination: destination, nextHeader: IpProtocolNumber.tcp,
                         transportLength: headerLength + payload.count, pool: pool) { transport in
            transport.storeBytes(of: sourcePort.bigEndian, toByteOffset: 0, as: UInt16.self)
            transport.storeBytes(of: destinationPort.bigEndian, toByteOffset: 2, as: UInt16.self)
            transport.storeBytes(of: sequenceNumber.bigEndian, toByteOffset: 4, as: UInt32.self)
            transport.storeBytes(of: acknowledgmentNumber.bigEndian, toByteOffset: 8, as: UInt32.self)
            transport[12] = UInt8(headerLength / 4) << 4
            transport[13] = flags.rawValue
            transport.storeBytes(of: window.bigEndian, toByteOffset: 14, as: UInt16.self)
            UnsafeMutableRawBufferPointer(rebasing: transport[20..<headerLength]).copyBytes(from: options)
            UnsafeMutableRawBufferPointer(rebasing: transport[headerLength...]).copyBytes(from: payload)
        }
    }

    /// An ICMP (v4 or v6, by the addresses' version) echo request.
    public static func icmpEchoRequest(
        source: IpAddress, destination: IpAddress, identifier: UInt16, sequence: UInt16,
        payload: some Collection<UInt8>, pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        try icmp(source: source, destination: destination, type: source.version == .v4 ? 8 : 128, code: 0,
                 restOfHeader: UInt32(identifier) << 16 | UInt32(sequence), payload: payload, pool: pool)
    }

    /// An ICMP (v4 or v6, by the addresses' version) echo reply.
    public static func icmpEchoReply(
        source: IpAddress, destination: IpAddress, identifier: UInt16, sequence: UInt16,
        payload: some Collection<UInt8>, pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        try icmp(source: source, destination: destination, type: source.version == .v4 ? 0 : 129, code: 0,
                 restOfHeader: UInt32(identifier) << 16 | UInt32(sequence), payload: payload, pool: pool)
    }

    /// Any ICMPv4 or ICMPv6 message (by the addresses' version).
    public static func icmp(
        source: IpAddress, destination: IpAddress, ttl: UInt8 = 64, type: UInt8, code: UInt8,
        restOfHeader: UInt32, payload: some Collection<UInt8>, pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        let nextHeader = source.version == .v4 ? IpProtocolNumber.icmpv4 : IpProtocolNumber.icmpv6
        return try build(source: source, destination: destination, nextHeader: nextHeader, ttl: ttl,
                         transportLength: 8 + payload.count, pool: pool) { transport in
            transport[0] = type
            transport[1] = code
            transport.storeBytes(of: restOfHeader.bigEndian, toByteOffset: 4, as: UInt32.self)
            UnsafeMutableRawBufferPointer(rebasing: transport[8...]).copyBytes(from: payload)
        }
    }

    /// The "administratively prohibited" error a filter sends back for `original`
    /// (ICMPv4 3/13, ICMPv6 1/1), from the original's destination to its source, TTL 20.
    public static func icmpDestinationUnreachableProhibited(
        for original: IpPacket, pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        try icmpDestinationUnreachable(for: original, v4Code: 13, v6Code: 1, pool: pool)
    }

    /// The "network unreachable" error for `original` (ICMPv4 3/0, ICMPv6 1/3 "address unreachable").
    public static func icmpDestinationUnreachableNetwork(
        for original: IpPacket, pool: PacketBufferPool = .shared
    ) throws(IpPacketError) -> IpPacket {
        try icmpDestinationUnreachable(for: original, v4Code: 0, v6Code: 3, pool: pool)
    }

    /// How much of the original packet an ICMPv6 error quotes: what fits in 1280 − 40 − 8 bytes.
    public static let maxIcmpv6QuotedBytes = PacketLimits.maxIpPacketSize - 40 - 8

    private static func icmpDestinationUnreachable(
        for original: IpPacket, v4Code: UInt8, v6Code: UInt8, pool: PacketBufferPool
    ) throws(IpPacketError) -> IpPacket {
        // IPv4 quotes the header and the first 8 bytes of its payload (RFC 792); IPv6 as much as fits (RFC 4443).
        let quoted = original.version == .v4
            ? min(original.count, original.transportOffset + 8)
            : min(original.count, maxIcmpv6QuotedBytes)
        return try original.withUnsafeBytes { (bytes) throws(IpPacketError) -> IpPacket in
            try icmp(source: original.destination, destination: original.source, ttl: 20,
                     type: original.version == .v4 ? 3 : 1, code: original.version == .v4 ? v4Code : v6Code,
                     restOfHeader: 0, payload: UnsafeRawBufferPointer(rebasing: bytes[..<quoted]), pool: pool)
        }
    }

    /// A packet of any transport protocol: the IP header is written here, `writeTransport` fills the
    /// `transportLength` bytes after it (zeroed first). Transport checksums are computed for TCP, UDP and ICMP;
    /// the result is validated by the strict parser like every other builder's.
    public static func build(
        source: IpAddress, destination: IpAddress, nextHeader: UInt8, ttl: UInt8 = 64, transportLength: Int,
        pool: PacketBufferPool, writeTransport: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(IpPacketError) -> IpPacket {
        guard source.version == destination.version else { throw IpPacketError(.mixedVersions) }
        let headerLength = source.version == .v4 ? 20 : 40
        let count = headerLength + transportLength
        guard count <= PacketLimits.maxIpPacketSize else { throw IpPacketError(.payloadTooLarge(packetLength: count)) }
        let buffer = pool.take()
        let bytes = UnsafeMutableRawBufferPointer(start: buffer.base, count: count)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        switch (source, destination) {
        case let (.v4(source), .v4(destination)):
            bytes[0] = 0x45
            bytes.storeBytes(of: UInt16(count).bigEndian, toByteOffset: 2, as: UInt16.self)
            bytes[8] = ttl
            bytes[9] = nextHeader
            bytes.storeBytes(of: source.value.bigEndian, toByteOffset: 12, as: UInt32.self)
            bytes.storeBytes(of: destination.value.bigEndian, toByteOffset: 16, as: UInt32.self)
        case let (.v6(source), .v6(destination)):
            bytes[0] = 0x60
            bytes.storeBytes(of: UInt16(transportLength).bigEndian, toByteOffset: 4, as: UInt16.self)
            bytes[6] = nextHeader
            bytes[7] = ttl
            for (offset, address) in [(8, source), (24, destination)] {
                bytes.storeBytes(of: address.high.bigEndian, toByteOffset: offset, as: UInt64.self)
                bytes.storeBytes(of: address.low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
            }
        default:
            throw IpPacketError(.mixedVersions)
        }
        writeTransport(UnsafeMutableRawBufferPointer(rebasing: bytes[headerLength...]))
        var packet = try IpPacket(buffer: buffer, count: count)
        packet.computeChecksums()
        return packet
    }
}
