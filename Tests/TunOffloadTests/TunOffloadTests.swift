import TunOffload
import IpPacket
import SansIO
import Testing

/// ``TunFrameSplitter`` and ``TunWriteCoalescer`` on frames built here. What the kernel makes of them, and what
/// they make of the kernel's, is `EventLoopTests`' TCP transfer through offloaded devices.
@Suite struct TunOffloadTests {
    static let v4 = (IpAddress("100.64.0.2")!, IpAddress("10.77.0.5")!)
    static let v6 = (IpAddress("fd00:2021:1111::2")!, IpAddress("fd00:77::5")!)
    /// A timestamp option (NOP, NOP, kind 8), as Linux puts on every segment.
    static let timestamps: [UInt8] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]

    @Test(arguments: [false, true])
    func aSuperPacketIsCutAsTheKernelsSegmentationWould(ipv6: Bool) throws {
        let payload = (0..<3_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let superPacket = try Self.superPacket(ipv6: ipv6, sequence: 0xFFFF_FF00, flags: [.ack, .psh, .fin, .cwr], payload: payload)
        let size = ipv6 ? 1_208 : 1_228  // 1280-byte segments
        let segments = try Self.split(superPacket, header: .init(tcp: ipv6, gsoSize: size, ipHeaderLength: ipv6 ? 40 : 20))

        #expect(segments.map(\.count) == [1_280, 1_280, 3_000 - 2 * size + (ipv6 ? 72 : 52)])
        #expect(segments.allSatisfy { $0.hasValidChecksums })
        #expect(segments.flatMap { Array($0.bytes[$0.count - $0.layer4PayloadCount..<$0.count]) } == payload)
        let sequences = segments.map { $0.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: (ipv6 ? 40 : 20) + 4, as: UInt32.self).bigEndian } }
        #expect(sequences == [0xFFFF_FF00, 0xFFFF_FF00 &+ UInt32(size), 0xFFFF_FF00 &+ UInt32(2 * size)], "sequence numbers wrap")
        let flags = segments.map { TcpFlags(rawValue: $0.bytes[(ipv6 ? 40 : 20) + 13]) }
        #expect(flags == [[.ack, .cwr], [.ack], [.ack, .psh, .fin]], "CWR on the first, PSH and FIN on the last")
        if !ipv6 {
            #expect(segments.map { UInt16($0.bytes[4]) << 8 | UInt16($0.bytes[5]) } == [0x1234, 0x1235, 0x1236])
        }
    }

    @Test func aPartialChecksumIsCompleted() throws {
        let datagram = try IpPacket.udp(source: Self.v4.0, destination: Self.v4.1, sourcePort: 5353, destinationPort: 53,
                                        payload: Array("a query".utf8))
        var frame = datagram.bytes
        let pseudoHeader = InternetChecksum.fold(frame[12..<20].withUnsafeBytes { InternetChecksum.sum($0, initial: 17 + 15) })
        frame[26] = UInt8(pseudoHeader >> 8)
        frame[27] = UInt8(pseudoHeader & 0xFF)
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.checksumStart = 20
        header.checksumOffset = 6
        let packets = try Self.split(frame, header: header)
        #expect(packets.map(\.bytes) == [datagram.bytes])
    }

    @Test func badFramesAreRefusedWithAReasonAndDeliverNothing() throws {
        let superPacket = try Self.superPacket(ipv6: false, sequence: 1, flags: [.ack], payload: [UInt8](repeating: 9, count: 2_000))
        let tcp = VirtioNetHeader(tcp: false, gsoSize: 1_000, ipHeaderLength: 20)
        var udp = tcp
        udp.gsoTypeValue = VirtioNetHeader.GsoType.udpL4.rawValue
        var outside = VirtioNetHeader()
        outside.flags = VirtioNetHeader.needsChecksum
        outside.checksumStart = 1_500
        var zero = tcp
        zero.gsoSize = 0
        var wide = tcp
        wide.gsoSize = 1_400
        let v6 = VirtioNetHeader(tcp: true, gsoSize: 1_000, ipHeaderLength: 40)
        let cases: [([UInt8], VirtioNetHeader, TunOffloadError)] = [
            (Array(superPacket[0..<30]), tcp, .truncated(count: 30)),
            (superPacket, udp, .unsupportedGsoType(5)),
            (Array(superPacket[0..<1_200]), outside, .checksumOutsidePacket(start: 1_500, offset: 0, count: 1_200)),
            (superPacket, zero, .malformedSuperPacket("GSO size 0")),
            (superPacket, wide, .segmentTooLarge(1_452)),
            (superPacket, v6, .malformedSuperPacket("GSO type TCPv6 on an IPv4 packet")),
        ]
        for (frame, header, expected) in cases {
            var delivered = 0
            var copy = frame
            #expect(throws: expected) {
                try copy.withUnsafeMutableBytes { bytes in
                    try TunFrameSplitter.split(bytes, header: header, pool: .shared) { _, _ in delivered += 1 }
                }
            }
            #expect(delivered == 0)
        }
    }

    @Test(arguments: [false, true])
    func segmentsOfOneFlowAreJoinedBackIntoTheSuperPacket(ipv6: Bool) throws {
        let payload = (0..<5_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let superPacket = try Self.superPacket(ipv6: ipv6, sequence: 77, flags: [.ack, .psh], payload: payload)
        let header = VirtioNetHeader(tcp: ipv6, gsoSize: 1_200, ipHeaderLength: ipv6 ? 40 : 20)
        let segments = try Self.split(superPacket, header: header)
        let frames = Self.coalesce(segments)
        #expect(frames.count == 1)
        #expect(frames.first?.header == header)
        #expect(frames.first?.bytes == superPacket, "the super-packet again, its checksum the pseudo-header's")
    }

    @Test func whatMustNotBeJoinedIsWrittenAloneAndInOrder() throws {
        func segment(_ sequence: UInt32, _ flags: TcpFlags = [.ack], port: UInt16 = 40_000, count: Int = 1_000) throws -> IpPacket {
            try IpPacket.tcp(source: Self.v4.0, destination: Self.v4.1, sourcePort: port, destinationPort: 5201,
                             sequenceNumber: sequence, acknowledgmentNumber: 9, flags: flags, options: Self.timestamps,
                             payload: [UInt8](repeating: 1, count: count))
        }
        var corruptedBytes = try segment(3_000).bytes
        corruptedBytes[corruptedBytes.count - 1] ^= 0xFF
        let corrupted = try IpPacket(copying: corruptedBytes)
        let packets = [
            try segment(0, [.syn], count: 0),       // alone: SYN
            try segment(1_000), try segment(2_000),  // joined
            corrupted,                               // alone: its checksum is wrong
            try segment(0, port: 40_001), try segment(1_000, port: 40_001),  // another flow, joined
            try segment(4_000), try segment(5_000, [.ack, .psh]),  // joined up to and with PSH
            try segment(6_000), try segment(6_500),   // a gap: two frames
            try segment(7_500, count: 500), try segment(8_000),  // a short segment ends the run
        ]
        let frames = Self.coalesce(packets)
        #expect(frames.map(\.segments) == [1, 2, 1, 2, 1, 2, 2, 1], "\(frames.map(\.segments))")
        #expect(frames[2].bytes == corrupted.bytes, "written as it came, for the kernel to drop")
    }

    // MARK: Frames

    /// An IPv4 (ID 0x1234) or IPv6 TCP packet with timestamps, any size, its checksum the pseudo-header's partial sum.
    static func superPacket(ipv6: Bool, sequence: UInt32, flags: TcpFlags, payload: [UInt8]) throws -> [UInt8] {
        let (source, destination) = ipv6 ? v6 : v4
        var bytes = try IpPacket.tcp(source: source, destination: destination, sourcePort: 40_000, destinationPort: 5201,
                                     sequenceNumber: sequence, acknowledgmentNumber: 9, flags: flags, options: timestamps,
                                     payload: [UInt8]()).bytes + payload
        let ip = ipv6 ? 40 : 20
        let tcpLength = bytes.count - ip
        if ipv6 {
            bytes.replaceSubrange(4..<6, with: [UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)])
        } else {
            bytes.replaceSubrange(2..<6, with: [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF), 0x12, 0x34])
            bytes.replaceSubrange(10..<12, with: [0, 0])
            let checksum = InternetChecksum.finalize(bytes[0..<20].withUnsafeBytes { InternetChecksum.sum($0) })
            bytes.replaceSubrange(10..<12, with: [UInt8(checksum >> 8), UInt8(checksum & 0xFF)])
        }
        let addresses = ipv6 ? bytes[8..<40] : bytes[12..<20]
        let partial = InternetChecksum.fold(addresses.withUnsafeBytes { InternetChecksum.sum($0, initial: 6 + UInt64(tcpLength)) })
        bytes.replaceSubrange(ip + 16..<ip + 18, with: [UInt8(partial >> 8), UInt8(partial & 0xFF)])
        return bytes
    }

    static func split(_ frame: [UInt8], header: VirtioNetHeader) throws -> [IpPacket] {
        var parsed: [Result<IpPacket, IpPacketError>] = []
        var copy = frame
        try copy.withUnsafeMutableBytes { bytes in
            try TunFrameSplitter.split(bytes, header: header, pool: .shared) { buffer, count in
                parsed.append(Result { () throws(IpPacketError) in try IpPacket(buffer: buffer, count: count) })
            }
        }
        return try parsed.map { try $0.get() }
    }

    struct Frame { var header: VirtioNetHeader; var bytes: [UInt8]; var segments: Int }

    static func coalesce(_ packets: [IpPacket]) -> [Frame] {
        let coalescer = TunWriteCoalescer()
        var frames: [Frame] = []
        let write: TunWriteCoalescer.Write = { header, bytes in
            let segments = header.gsoType == VirtioNetHeader.GsoType.none
                ? 1 : (bytes.count - Int(header.headerLength) + Int(header.gsoSize) - 1) / Int(header.gsoSize)
            frames.append(Frame(header: header, bytes: Array(bytes), segments: segments))
            return true
        }
        for packet in packets { coalescer.append(packet, write) }
        coalescer.flush(write)
        return frames
    }
}

extension VirtioNetHeader {
    init(tcp ipv6: Bool, gsoSize: Int, ipHeaderLength: Int) {
        self.init()
        flags = VirtioNetHeader.needsChecksum
        gsoTypeValue = (ipv6 ? GsoType.tcpV6 : GsoType.tcpV4).rawValue
        headerLength = UInt16(ipHeaderLength + 32)
        self.gsoSize = UInt16(gsoSize)
        checksumStart = UInt16(ipHeaderLength)
        checksumOffset = 16
    }
}
