/// A validated IPv4 or IPv6 packet in a pool buffer.
///
/// Construction applies every strict rule once (see `Parsing/`), so the accessors afterwards are infallible
/// and cheap: they read fields at offsets found during validation. Mutators patch every affected checksum
/// incrementally (RFC 1624). Neither parsing nor accessors nor mutators allocate.
///
/// ```swift
/// let buffer = PacketBufferPool.shared.take()
/// let count = read(tunFd, buffer.base, buffer.capacity)
/// var packet = try IpPacket(buffer: buffer, count: count)
/// if let udp = packet.udp { print(udp.destinationPort) }
/// try packet.setDestination(.v4(IPv4Address(10, 0, 0, 7)))
/// ```
public struct IpPacket {
    /// The buffer holding the packet's bytes.
    public var storage: PacketBuffer { _storage }
    @usableFromInline var _storage: PacketBuffer
    /// Where the packet starts in ``storage``; room before it is headroom for encapsulation.
    public let offset: Int
    /// The packet's length in bytes.
    public let count: Int
    /// The IP version.
    public let version: IpVersion
    /// The transport protocol: IPv4's protocol field, or IPv6's next header after the extension headers.
    public let nextHeader: UInt8
    /// Where the transport header starts, relative to the packet's first byte.
    public let transportOffset: Int
    /// Which transport header was validated.
    public let transport: Transport

    /// The transport layers the parser validates; everything else is carried opaquely.
    public enum Transport: Hashable, Sendable {
        case tcp
        case udp
        case icmpv4
        case icmpv6
        case other(UInt8)
    }

    /// Validates the `count` bytes at `offset` in `buffer` as an IP packet.
    @inlinable
    public init(buffer: PacketBuffer, offset: Int = 0, count: Int) throws(IpPacketError) {
        guard offset >= 0, count >= 0, offset + count <= buffer.capacity else {
            throw IpPacketError(.exceedsBuffer(offset: offset, length: count, capacity: buffer.capacity))
        }
        guard count <= PacketLimits.maxIpPacketSize else {
            throw PacketParser.error(.tooLarge(length: count), UnsafeRawBufferPointer(start: buffer.base + offset, count: count))
        }
        let layout = try PacketParser.validate(UnsafeRawBufferPointer(start: buffer.base + offset, count: count))
        _storage = buffer
        self.offset = offset
        self.count = count
        version = layout.version
        nextHeader = layout.nextHeader
        transportOffset = layout.transportOffset
        transport = layout.transport
    }

    /// Copies `bytes` into a buffer from `pool` and validates them. Convenient off the data path.
    public init(copying bytes: some Collection<UInt8>, pool: PacketBufferPool = .shared) throws(IpPacketError) {
        guard bytes.count <= PacketLimits.maxIpPacketSize else {
            let error = bytes.withContiguousStorageIfAvailable { contiguous in
                PacketParser.error(.tooLarge(length: contiguous.count), UnsafeRawBufferPointer(contiguous))
            }
            throw error ?? IpPacketError(.tooLarge(length: bytes.count))
        }
        let buffer = pool.take()
        buffer.bytes.copyBytes(from: bytes)
        try self.init(buffer: buffer, count: bytes.count)
    }

    // MARK: Addresses and header fields

    /// The source address.
    @inlinable
    public var source: IpAddress {
        switch version {
        case .v4: .v4(IPv4Address(readUInt32(at: 12)))
        case .v6: .v6(readIPv6Address(at: 8))
        }
    }

    /// The destination address.
    @inlinable
    public var destination: IpAddress {
        switch version {
        case .v4: .v4(IPv4Address(readUInt32(at: 16)))
        case .v6: .v6(readIPv6Address(at: 24))
        }
    }

    /// The ECN codepoint of the IP header.
    @inlinable
    public var ecn: Ecn {
        let trafficClass = version == .v4 ? readUInt8(at: 1) : UInt8(truncatingIfNeeded: readUInt16(at: 0) >> 4)
        return Ecn(rawValue: trafficClass & 0b11) ?? .notEct
    }

    /// IPv4's time to live or IPv6's hop limit.
    @inlinable
    public var ttl: UInt8 {
        readUInt8(at: version == .v4 ? 8 : 7)
    }

    /// The fixed IPv4 header's fields, or `nil` for IPv6.
    public var ipv4Header: IPv4Header? {
        guard version == .v4 else { return nil }
        return IPv4Header(packet: self)
    }

    /// The fixed IPv6 header's fields, or `nil` for IPv4.
    public var ipv6Header: IPv6Header? {
        guard version == .v6 else { return nil }
        return IPv6Header(packet: self)
    }

    /// The bytes after the IP header and any extension headers, as a range of packet offsets.
    @inlinable
    public var payloadRange: Range<Int> { transportOffset..<count }

    /// The number of bytes the transport carries: UDP, ICMP and TCP payload after their headers,
    /// the whole IP payload for other protocols.
    @inlinable
    public var layer4PayloadCount: Int {
        switch transport {
        case .udp, .icmpv4, .icmpv6: count - transportOffset - 8
        case .tcp: count - transportOffset - tcpHeaderLength
        case .other: count - transportOffset
        }
    }

    // MARK: Classification

    @inlinable
    public var isUdp: Bool { transport == .udp }
    @inlinable
    public var isTcp: Bool { transport == .tcp }
    @inlinable
    public var isIcmpv4: Bool { transport == .icmpv4 }
    @inlinable
    public var isIcmpv6: Bool { transport == .icmpv6 }

    // MARK: Raw bytes

    /// Calls `body` with the packet's bytes.
    @inlinable
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: _storage.base + offset, count: count))
    }

    /// A copy of the packet's bytes. Allocates: for tests, tools and logging, not the data path.
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }
}

extension IpPacket: Equatable {
    /// Packets are equal when their bytes are.
    public static func == (lhs: IpPacket, rhs: IpPacket) -> Bool {
        lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in left.elementsEqual(right) } }
    }
}

/// The two ECN bits of the IP header (RFC 3168).
public enum Ecn: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case notEct = 0b00
    case ect1 = 0b01
    case ect0 = 0b10
    case ce = 0b11

    public var description: String {
        switch self {
        case .notEct: "Not-ECT"
        case .ect1: "ECT(1)"
        case .ect0: "ECT(0)"
        case .ce: "CE"
        }
    }
}

// The buffer is copy-on-write (mutators copy a shared buffer first), so a packet can cross isolation domains.
extension IpPacket: Sendable {}
