import IpPacket

#if canImport(Glibc)
import Glibc
#endif

/// Packets bound for a TUN device with offloads, written with as few system calls as the kernel's GRO would use:
/// consecutive TCP segments of one flow (same addresses, ports, ACK number, window, options and IP fields; only ACK,
/// and PSH on the last, set; every checksum valid) are joined into one super-packet that the kernel cuts again.
/// Everything else is written alone, after whatever of its flow was queued before it.
///
/// Owned by one thread. Call ``flush(_:)`` at the end of every batch.
public final class TunWriteCoalescer {
    /// Writes one frame: the virtio header, then the packet. Returns whether the device took it.
    public typealias Write = (VirtioNetHeader, UnsafeRawBufferPointer) -> Bool

    /// What the coalescer did, for the loop's statistics.
    public struct Counts: Equatable, Sendable {
        /// Packets handed to ``append(_:_:)``.
        public var packets = 0
        /// Frames written (one system call each).
        public var writes = 0
        /// Packets in frames the device refused (its queue full).
        public var refusedPackets = 0
    }

    /// Flows coalesced at once; a batch mostly carries a few bulk flows.
    static let runLimit = 8

    public private(set) var counts = Counts()
    private var runs: [CoalescingRun]
    /// The first `openRuns` of `runs` hold a flow each, oldest first.
    private var openRuns = 0

    public init() {
        runs = (0..<Self.runLimit).map { _ in CoalescingRun() }
    }

    deinit {
        for run in runs { run.deallocate() }
    }

    /// Queues `packet` for the device, or writes it at once when it cannot join a super-packet.
    public func append(_ packet: borrowing IpPacket, _ write: Write) {
        counts.packets += 1
        packet.withUnsafeBytes { bytes in
            let shape = TcpSegmentShape(bytes, isTcp: packet.isTcp)
            let run = shape.map { shape in runs[0..<openRuns].firstIndex { $0.isSameFlow(as: bytes, shape: shape) } } ?? nil
            if let shape, shape.canCoalesce, let run, runs[run].canAppend(bytes, shape: shape),
               packet.hasValidChecksums {
                runs[run].append(bytes, shape: shape)
                return
            }
            if let run { flushRun(at: run, write) }
            guard let shape, shape.canCoalesce, packet.hasValidChecksums else {
                emit(VirtioNetHeader(), bytes, segments: 1, write)
                return
            }
            startRun(bytes, shape: shape, write)
        }
    }

    /// Writes every queued flow, oldest first.
    public func flush(_ write: Write) {
        while openRuns > 0 { flushRun(at: 0, write) }
    }

    private func startRun(_ bytes: UnsafeRawBufferPointer, shape: TcpSegmentShape, _ write: Write) {
        if openRuns == runs.count { flushRun(at: 0, write) }
        runs[openRuns].start(bytes, shape: shape)
        openRuns += 1
    }

    private func flushRun(at index: Int, _ write: Write) {
        let (header, frame, segments) = runs[index].finish()
        emit(header, frame, segments: segments, write)
        openRuns -= 1
        // Keep the open runs in order; the finished one's buffer goes to the end for reuse.
        for position in index..<openRuns { runs.swapAt(position, position + 1) }
    }

    private func emit(_ header: VirtioNetHeader, _ bytes: UnsafeRawBufferPointer, segments: Int, _ write: Write) {
        counts.writes += 1
        if !write(header, bytes) { counts.refusedPackets += segments }
    }
}

/// Where a TCP segment's headers are, and whether it may join a super-packet at all.
struct TcpSegmentShape {
    let ipv6: Bool
    let ipHeaderLength: Int
    let headersLength: Int
    let payloadCount: Int
    let canCoalesce: Bool

    static let ack: UInt8 = 0x10
    static let push: UInt8 = 0x08

    init?(_ bytes: UnsafeRawBufferPointer, isTcp: Bool) {
        guard isTcp, bytes.count >= 40 else { return nil }
        ipv6 = bytes[0] >> 4 == 6
        if ipv6, bytes[6] != 6 { return nil }  // extension headers: written alone
        ipHeaderLength = ipv6 ? 40 : Int(bytes[0] & 0x0F) * 4
        guard bytes.count >= ipHeaderLength + 20 else { return nil }
        headersLength = ipHeaderLength + Int(bytes[ipHeaderLength + 12] >> 4) * 4
        guard headersLength <= bytes.count else { return nil }
        payloadCount = bytes.count - headersLength
        let flags = bytes[ipHeaderLength + 13]
        let plainHeader = ipv6 || ipHeaderLength == 20 && bytes.loadBigEndian(UInt16.self, at: 6) & 0x3FFF == 0
        canCoalesce = plainHeader && payloadCount > 0 && flags & ~Self.push == Self.ack
    }
}

/// One flow's super-packet under construction: the first segment's headers, then every payload in order.
struct CoalescingRun {
    /// The virtio header's room, then up to 64 KiB of packet.
    private let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: VirtioNetHeader.size + 65_535, alignment: 16)
    private var count = 0
    private var shape: TcpSegmentShape?
    private var segments = 0
    private var nextSequence: UInt32 = 0
    private var closed = false

    func deallocate() { frame.deallocate() }

    private var packet: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: frame[VirtioNetHeader.size...])
    }

    func isSameFlow(as bytes: UnsafeRawBufferPointer, shape other: TcpSegmentShape) -> Bool {
        guard let shape, shape.ipv6 == other.ipv6 else { return false }
        let addresses = shape.ipv6 ? 8..<40 : 12..<20
        return sameBytes(bytes, at: addresses.lowerBound, packet, at: addresses.lowerBound, count: addresses.count)
            && sameBytes(bytes, at: other.ipHeaderLength, packet, at: shape.ipHeaderLength, count: 4)
    }

    func canAppend(_ bytes: UnsafeRawBufferPointer, shape other: TcpSegmentShape) -> Bool {
        guard let shape, !closed, other.headersLength == shape.headersLength,
              other.payloadCount <= segmentSize, count + other.payloadCount <= 65_535,
              bytes.loadBigEndian(UInt32.self, at: shape.ipHeaderLength + 4) == nextSequence
        else { return false }
        let ip = shape.ipHeaderLength
        // IP: version, traffic class / TOS and flow label; IPv4's flags, TTL and protocol; IPv6's hop limit.
        let sameIp = shape.ipv6
            ? sameBytes(bytes, at: 0, packet, at: 0, count: 4) && bytes[7] == packet[7]
            : sameBytes(bytes, at: 0, packet, at: 0, count: 2) && sameBytes(bytes, at: 6, packet, at: 6, count: 4)
        // TCP: the ACK number and data offset, the flags but PSH, the window, the urgent pointer and every option.
        return sameIp
            && sameBytes(bytes, at: ip + 8, packet, at: ip + 8, count: 5)
            && bytes[ip + 13] & ~TcpSegmentShape.push == packet[ip + 13] & ~TcpSegmentShape.push
            && sameBytes(bytes, at: ip + 14, packet, at: ip + 14, count: 2)
            && sameBytes(bytes, at: ip + 18, packet, at: ip + 18, count: shape.headersLength - ip - 18)
    }

    private var segmentSize: Int { (shape?.payloadCount ?? 0) }

    mutating func start(_ bytes: UnsafeRawBufferPointer, shape: TcpSegmentShape) {
        UnsafeMutableRawBufferPointer(rebasing: packet[0..<bytes.count]).copyMemory(from: bytes)
        count = bytes.count
        self.shape = shape
        segments = 1
        nextSequence = bytes.loadBigEndian(UInt32.self, at: shape.ipHeaderLength + 4) &+ UInt32(shape.payloadCount)
        closed = bytes[shape.ipHeaderLength + 13] & TcpSegmentShape.push != 0
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer, shape other: TcpSegmentShape) {
        UnsafeMutableRawBufferPointer(rebasing: packet[count..<count + other.payloadCount])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[other.headersLength...]))
        count += other.payloadCount
        segments += 1
        nextSequence &+= UInt32(other.payloadCount)
        let pushed = bytes[other.ipHeaderLength + 13] & TcpSegmentShape.push != 0
        if pushed { packet[other.ipHeaderLength + 13] |= TcpSegmentShape.push }
        closed = pushed || other.payloadCount < segmentSize
    }

    /// The frame to write: a plain packet for one segment, a super-packet with a partial checksum for more.
    mutating func finish() -> (VirtioNetHeader, UnsafeRawBufferPointer, segments: Int) {
        defer { shape = nil }
        guard let shape, segments > 1 else {
            return (VirtioNetHeader(), UnsafeRawBufferPointer(rebasing: packet[0..<count]), 1)
        }
        let ip = shape.ipHeaderLength
        let tcpLength = count - ip
        if shape.ipv6 {
            packet.storeBigEndian(UInt16(tcpLength), at: 4)
        } else {
            packet.storeBigEndian(UInt16(count), at: 2)
            packet.storeBigEndian(UInt16(0), at: 10)
            packet.storeBigEndian(InternetChecksum.finalize(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: packet[0..<ip]))), at: 10)
        }
        let addresses = UnsafeRawBufferPointer(rebasing: shape.ipv6 ? packet[8..<40] : packet[12..<20])
        packet.storeBigEndian(InternetChecksum.fold(InternetChecksum.sum(addresses, initial: 6 + UInt64(tcpLength))), at: ip + 16)
        let header = VirtioNetHeader.tcpSuperPacket(ipv6: shape.ipv6, headersLength: shape.headersLength,
                                                    transportOffset: ip, gsoSize: shape.payloadCount)
        return (header, UnsafeRawBufferPointer(rebasing: packet[0..<count]), segments)
    }
}

/// Whether `count` bytes of `a` at `aOffset` equal those of `b` at `bOffset` (both ranges in bounds).
@inline(__always)
func sameBytes(_ a: UnsafeRawBufferPointer, at aOffset: Int, _ b: UnsafeMutableRawBufferPointer, at bOffset: Int, count: Int) -> Bool {
    memcmp(a.baseAddress! + aOffset, b.baseAddress! + bOffset, count) == 0
}
