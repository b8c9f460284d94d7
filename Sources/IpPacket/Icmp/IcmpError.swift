/// An ICMP error message and the packet that caused it, as far as the error quotes it.
public struct IcmpError: Hashable, Sendable, CustomStringConvertible {
    public var kind: Kind
    /// The quoted packet: the one that failed.
    public var failedPacket: FailedPacket

    public enum Kind: Hashable, Sendable {
        case v4Unreachable(code: UInt8)
        case v4TimeExceeded(code: UInt8)
        case v6Unreachable(code: UInt8)
        case v6PacketTooBig(mtu: UInt32)
        case v6TimeExceeded(code: UInt8)
    }

    /// ICMPv4 code 13 or ICMPv6 code 1: a filter refused the packet.
    public var isProhibited: Bool {
        switch kind {
        case .v4Unreachable(13), .v6Unreachable(1): true
        default: false
        }
    }

    /// ICMPv4 code 0 or ICMPv6 code 3: the destination's network is unreachable.
    public var isNetworkUnreachable: Bool {
        switch kind {
        case .v4Unreachable(0), .v6Unreachable(3): true
        default: false
        }
    }

    public var description: String {
        switch kind {
        case .v4Unreachable(let code), .v6Unreachable(let code): "Destination is unreachable (code: \(code))"
        case .v4TimeExceeded(let code), .v6TimeExceeded(let code): "Time exceeded (code: \(code))"
        case .v6PacketTooBig(let mtu): "IPv6 packet exceeds allowed MTU (\(mtu))"
        }
    }
}

/// The packet quoted inside an ICMP error: only its headers need to be complete.
public struct FailedPacket: Hashable, Sendable {
    /// The failed packet's source: the host that sent it, usually the receiver of the ICMP error.
    public var source: IpAddress
    /// The destination that could not be reached.
    public var destination: IpAddress
    /// The failed packet's source port or echo identifier.
    public var sourceKey: TransportKey
    /// The failed packet's destination port or echo identifier.
    public var destinationKey: TransportKey
    /// Where the quoted bytes lie in the ICMP error packet.
    public var range: Range<Int>
    /// Where the quoted packet's transport header starts, relative to the ICMP error packet.
    public var transportOffset: Int
}

extension IpPacket {
    /// Parses an ICMP error down to the addresses and ports of the packet it quotes.
    ///
    /// Returns `nil` for non-ICMP packets and for echo requests and replies; throws for other ICMP types
    /// (redirects, router advertisements, …) and for quoted packets that cannot be read.
    public func icmpError() throws(IpPacketError) -> IcmpError? {
        guard let header = icmp, !isEcho else { return nil }
        let kind: IcmpError.Kind
        switch (version, header.type) {
        case (.v4, 3): kind = .v4Unreachable(code: header.code)
        case (.v4, 11): kind = .v4TimeExceeded(code: header.code)
        case (.v6, 1): kind = .v6Unreachable(code: header.code)
        case (.v6, 2): kind = .v6PacketTooBig(mtu: header.restOfHeader)
        case (.v6, 3): kind = .v6TimeExceeded(code: header.code)
        default:
            throw IpPacketError(.unsupportedIcmpMessage(type: header.type, code: header.code), context: errorContext)
        }
        return IcmpError(kind: kind, failedPacket: try failedPacket(at: header.payloadRange))
    }

    private func failedPacket(at range: Range<Int>) throws(IpPacketError) -> FailedPacket {
        let embedded = UnsafeRawBufferPointer(start: start + range.lowerBound, count: range.count)
        guard let first = embedded.first else { throw IpPacketError(.embeddedPacketTooShort(available: 0), context: errorContext) }
        guard first >> 4 == version.rawValue else {
            throw IpPacketError(.embeddedVersionMismatch(outer: version, embedded: first >> 4), context: errorContext)
        }
        let ip: PacketParser.IpLayer
        do {
            ip = version == .v4
                ? try PacketParser.ipv4Layer(embedded, requireExactLength: false)
                : try PacketParser.ipv6Layer(embedded, requireExactLength: false)
        } catch {
            throw IpPacketError(.embeddedPacketTooShort(available: embedded.count), context: errorContext)
        }
        let source: IpAddress
        let destination: IpAddress
        switch version {
        case .v4:
            source = .v4(IPv4Address(embedded.uint32(at: 12)))
            destination = .v4(IPv4Address(embedded.uint32(at: 16)))
        case .v6:
            source = .v6(IPv6Address(high: embedded.uint64(at: 8), low: embedded.uint64(at: 16)))
            destination = .v6(IPv6Address(high: embedded.uint64(at: 24), low: embedded.uint64(at: 32)))
        }
        let l4 = ip.transportOffset
        let available = embedded.count - l4
        let sourceKey: TransportKey
        let destinationKey: TransportKey
        switch ip.nextHeader {
        case IpProtocolNumber.udp, IpProtocolNumber.tcp:
            guard available >= 4 else {
                throw IpPacketError(.embeddedL4TooShort(protocol: ip.nextHeader, available: available), context: errorContext)
            }
            let sourcePort = embedded.uint16(at: l4)
            let destinationPort = embedded.uint16(at: l4 + 2)
            let isUdp = ip.nextHeader == IpProtocolNumber.udp
            sourceKey = isUdp ? .udp(sourcePort) : .tcp(sourcePort)
            destinationKey = isUdp ? .udp(destinationPort) : .tcp(destinationPort)
        case IpProtocolNumber.icmpv4 where version == .v4, IpProtocolNumber.icmpv6 where version == .v6:
            guard available >= 8 else {
                throw IpPacketError(.embeddedL4TooShort(protocol: ip.nextHeader, available: available), context: errorContext)
            }
            let type = embedded[l4]
            let code = embedded[l4 + 1]
            let echoRequestType: UInt8 = version == .v4 ? 8 : 128
            guard type == echoRequestType, code == 0 else {
                throw IpPacketError(.embeddedIcmpNotEchoRequest(type: type, code: code), context: errorContext)
            }
            sourceKey = .icmpEcho(identifier: embedded.uint16(at: l4 + 4))
            destinationKey = sourceKey
        default:
            throw IpPacketError(.embeddedUnsupportedProtocol(ip.nextHeader), context: errorContext)
        }
        return FailedPacket(
            source: source, destination: destination, sourceKey: sourceKey, destinationKey: destinationKey,
            range: range, transportOffset: range.lowerBound + l4)
    }

    /// Rewrites the quoted packet of an ICMP error for NAT: its destination becomes `destination` and its
    /// source port (or echo identifier) becomes `sourceKeyValue`. The outer ICMP checksum is patched; the
    /// quoted packet's own checksums are left as they were quoted, as Firezone does.
    public mutating func translateFailedPacket(
        destination newDestination: IpAddress, sourceKeyValue: UInt16
    ) throws(IpPacketError) {
        guard let error = try icmpError() else { throw IpPacketError(.notAnIcmpError, context: errorContext) }
        guard newDestination.version == version else {
            throw IpPacketError(version == .v4 ? .notIPv4 : .notIPv6, context: errorContext)
        }
        makeStorageUnique()
        let failed = error.failedPacket
        var checksum = IncrementalChecksum(checksum: readUInt16(at: transportOffset + 2))
        let destinationOffset = failed.range.lowerBound + (version == .v4 ? 16 : 24)
        checksum.replace(old: readAddress(at: destinationOffset), new: newDestination)
        let keyOffset: Int
        switch failed.sourceKey {
        case .udp, .tcp: keyOffset = failed.transportOffset
        case .icmpEcho: keyOffset = failed.transportOffset + 4
        }
        checksum.replace(old: readUInt16(at: keyOffset), new: sourceKeyValue)
        writeAddress(newDestination, at: destinationOffset)
        writeUInt16(sourceKeyValue, at: keyOffset)
        writeUInt16(checksum.finalized, at: transportOffset + 2)
    }
}
