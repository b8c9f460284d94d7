import IpPacket

/// Turns what a TUN device with offloads hands over (one packet whose transport checksum may be partial, or a TCP
/// super-packet of up to 64 KiB) into complete IP packets with valid checksums, as the kernel's own TSO would
/// have cut them: each segment gets its share of the payload, its sequence number, length, IPv4 ID and checksums;
/// FIN and PSH stay on the last segment, CWR on the first.
public enum TunFrameSplitter {
    /// Splits `packet` (the frame without its virtio header) and calls `deliver` with each packet, copied into a
    /// buffer from `pool`, and its length. Nothing is delivered when the frame is malformed. `deliver` owns the
    /// buffer: once its packet holds the only reference, the pool can take it back.
    public static func split(_ packet: UnsafeMutableRawBufferPointer, header: VirtioNetHeader, pool: PacketBufferPool,
                             deliver: (consuming PacketBuffer, Int) -> Void) throws(TunOffloadError) {
        guard let type = header.gsoType else { throw .unsupportedGsoType(header.gsoTypeValue) }
        switch type {
        case .none:
            if header.needsChecksumCompletion {
                try completeChecksum(packet, start: Int(header.checksumStart), offset: Int(header.checksumOffset))
            }
            guard packet.count <= PacketLimits.maxIpPacketSize else { throw .segmentTooLarge(packet.count) }
            let buffer = pool.take()
            buffer.copy(from: UnsafeRawBufferPointer(packet))
            deliver(consume buffer, packet.count)
        case .tcpV4, .tcpV6:
            let layout = try TcpSuperPacket(packet, ipv6: type == .tcpV6, segmentSize: Int(header.gsoSize))
            layout.segments(of: UnsafeRawBufferPointer(packet), pool: pool, deliver: deliver)
        case .udp, .udpL4:
            throw .unsupportedGsoType(header.gsoTypeValue)
        }
    }

    /// Finishes a partial checksum: the field holds the pseudo-header's sum; sum from `start` to the end over it.
    static func completeChecksum(_ packet: UnsafeMutableRawBufferPointer, start: Int, offset: Int) throws(TunOffloadError) {
        guard start < packet.count, offset + 2 <= packet.count - start else {
            throw .checksumOutsidePacket(start: start, offset: offset, count: packet.count)
        }
        var checksum = InternetChecksum.finalize(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: packet[start...])))
        if checksum == 0, offset == 6 { checksum = 0xFFFF }  // UDP sends zero as all ones (RFC 768)
        packet.storeBytes(of: checksum.bigEndian, toByteOffset: start + offset, as: UInt16.self)
    }
}

/// The headers of a TCP super-packet, checked against what a segment needs.
struct TcpSuperPacket {
    let ipv6: Bool
    let ipHeaderLength: Int
    let headersLength: Int
    let segmentSize: Int
    let payloadCount: Int

    init(_ packet: UnsafeMutableRawBufferPointer, ipv6: Bool, segmentSize: Int) throws(TunOffloadError) {
        let count = packet.count
        guard count >= (ipv6 ? 60 : 40) else { throw .truncated(count: count) }
        let version = packet[0] >> 4
        if ipv6 {
            guard version == 6 else { throw .malformedSuperPacket("GSO type TCPv6 on an IPv\(version) packet") }
            guard packet[6] == 6 else { throw .malformedSuperPacket("IPv6 next header \(packet[6]), not TCP") }
            ipHeaderLength = 40
        } else {
            guard version == 4 else { throw .malformedSuperPacket("GSO type TCPv4 on an IPv\(version) packet") }
            guard packet[9] == 6 else { throw .malformedSuperPacket("IPv4 protocol \(packet[9]), not TCP") }
            ipHeaderLength = Int(packet[0] & 0x0F) * 4
            guard ipHeaderLength >= 20 else { throw .malformedSuperPacket("IPv4 header length \(ipHeaderLength)") }
        }
        guard ipHeaderLength + 20 <= count else { throw .truncated(count: count) }
        let tcpHeaderLength = Int(packet[ipHeaderLength + 12] >> 4) * 4
        guard tcpHeaderLength >= 20 else { throw .malformedSuperPacket("TCP header length \(tcpHeaderLength)") }
        headersLength = ipHeaderLength + tcpHeaderLength
        guard headersLength <= count else { throw .truncated(count: count) }
        guard segmentSize > 0 else { throw .malformedSuperPacket("GSO size 0") }
        guard headersLength + segmentSize <= PacketLimits.maxIpPacketSize else { throw .segmentTooLarge(headersLength + segmentSize) }
        self.ipv6 = ipv6
        self.segmentSize = segmentSize
        payloadCount = count - headersLength
    }

    func segments(of packet: UnsafeRawBufferPointer, pool: PacketBufferPool, deliver: (consuming PacketBuffer, Int) -> Void) {
        let firstSequence = packet.loadBigEndian(UInt32.self, at: ipHeaderLength + 4)
        let firstId = ipv6 ? 0 : packet.loadBigEndian(UInt16.self, at: 4)
        let flags = packet[ipHeaderLength + 13]
        var offset = 0
        var index = 0
        repeat {
            let length = min(segmentSize, payloadCount - offset)
            let isLast = offset + length == payloadCount
            let buffer = pool.take()
            let segment = UnsafeMutableRawBufferPointer(start: buffer.base, count: headersLength + length)
            segment.copyMemory(from: UnsafeRawBufferPointer(rebasing: packet[0..<headersLength]))
            UnsafeMutableRawBufferPointer(rebasing: segment[headersLength...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: packet[(headersLength + offset)..<(headersLength + offset + length)]))

            var segmentFlags = flags
            if !isLast { segmentFlags &= ~0x09 }  // FIN, PSH
            if index > 0 { segmentFlags &= ~0x80 }  // CWR
            segment[ipHeaderLength + 13] = segmentFlags
            segment.storeBigEndian(firstSequence &+ UInt32(truncatingIfNeeded: offset), at: ipHeaderLength + 4)
            let tcpLength = segment.count - ipHeaderLength
            if ipv6 {
                segment.storeBigEndian(UInt16(tcpLength), at: 4)
            } else {
                segment.storeBigEndian(UInt16(segment.count), at: 2)
                segment.storeBigEndian(firstId &+ UInt16(truncatingIfNeeded: index), at: 4)
                segment.storeBigEndian(UInt16(0), at: 10)
                let header = UnsafeRawBufferPointer(rebasing: segment[0..<ipHeaderLength])
                segment.storeBigEndian(InternetChecksum.finalize(InternetChecksum.sum(header)), at: 10)
            }
            segment.storeBigEndian(UInt16(0), at: ipHeaderLength + 16)
            let checksum = InternetChecksum.finalize(
                InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: segment[ipHeaderLength...]),
                                     initial: pseudoHeaderSum(UnsafeRawBufferPointer(segment), tcpLength: tcpLength)))
            segment.storeBigEndian(checksum, at: ipHeaderLength + 16)
            deliver(consume buffer, segment.count)
            offset += length
            index += 1
        } while offset < payloadCount
    }

    /// The TCP pseudo-header's unfolded sum: addresses, protocol 6 and the TCP length.
    func pseudoHeaderSum(_ packet: UnsafeRawBufferPointer, tcpLength: Int) -> UInt64 {
        let addresses = ipv6 ? UnsafeRawBufferPointer(rebasing: packet[8..<40]) : UnsafeRawBufferPointer(rebasing: packet[12..<20])
        return InternetChecksum.sum(addresses, initial: 6 + UInt64(tcpLength))
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func loadBigEndian<Value: FixedWidthInteger>(_ type: Value.Type, at offset: Int) -> Value {
        Value(bigEndian: loadUnaligned(fromByteOffset: offset, as: Value.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always)
    func loadBigEndian<Value: FixedWidthInteger>(_ type: Value.Type, at offset: Int) -> Value {
        Value(bigEndian: loadUnaligned(fromByteOffset: offset, as: Value.self))
    }

    @inline(__always)
    func storeBigEndian<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: Value.self)
    }
}
