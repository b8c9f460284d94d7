// libFuzzer harness for the frames of a TUN device with offloads. Byte 0 picks the mode.
// Mode 0 (split): bytes 1–10 are the virtio header, the rest the packet. Splitting never crashes; it throws or
// delivers packets of at most the MTU; a TCP super-packet's segments carry its payload in order, every one that
// parses has valid checksums, and joining them again gives one frame that splits into the same segments.
// Mode 1 (join): the rest is a list of packets, each after a 2-byte length. Whatever the coalescer writes splits
// back into exactly the packets it was given, but for the IPv4 ID and header checksum of joined segments.
// Build and run with `scripts/fuzz TunOffload [seconds]`.
import IpPacket
import TunOffload

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTunOffload(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    if input[0] & 1 == 0 {
        checkSplit(UnsafeRawBufferPointer(rebasing: input[1...]))
    } else {
        checkJoin(UnsafeRawBufferPointer(rebasing: input[1...]))
    }
    return 0
}

func checkSplit(_ input: UnsafeRawBufferPointer) {
    guard input.count > VirtioNetHeader.size else { return }
    let header = VirtioNetHeader(reading: input)
    var frame = Array(input[VirtioNetHeader.size...])
    let original = frame
    guard let packets = split(&frame, header: header) else { return }
    precondition(!packets.isEmpty, "a frame that splits delivers a packet")
    precondition(packets.allSatisfy { $0.count <= PacketLimits.maxIpPacketSize }, "no packet above the MTU")
    guard header.gsoType == .tcpV4 || header.gsoType == .tcpV6 else { return }
    let parsed = packets.compactMap { try? IpPacket(copying: $0) }
    precondition(parsed.allSatisfy { !$0.isTcp || $0.hasValidChecksums }, "segments carry valid checksums")
    let headers = Int(headersLength(original))
    let payload = packets.flatMap { $0[headers...] }
    precondition(payload.elementsEqual(original[headers...]), "the segments carry the payload in order")
    checkSegmentHeaders(packets, of: original, headers: headers)
    guard parsed.count == packets.count, parsed.allSatisfy(\.isTcp) else { return }
    let rejoined = coalesce(parsed)
    let again = rejoined.flatMap { frame in
        var bytes = frame.bytes
        guard let packets = split(&bytes, header: frame.header) else { fatalError("a joined frame does not split") }
        return packets
    }
    precondition(again == packets, "joining and splitting the segments again changes nothing")
}

/// What TSO does to each segment's headers: sequence numbers advance by the payload before, IPv4 IDs by one,
/// FIN and PSH stay on the last segment and CWR on the first; nothing else in the headers changes.
func checkSegmentHeaders(_ segments: [[UInt8]], of original: [UInt8], headers: Int) {
    let ipv6 = original[0] >> 4 == 6
    let ip = ipv6 ? 40 : Int(original[0] & 0x0F) * 4
    func uint(_ bytes: [UInt8], _ offset: Int, _ count: Int) -> UInt32 {
        bytes[offset..<offset + count].reduce(0) { $0 << 8 | UInt32($1) }
    }
    var sequence = uint(original, ip + 4, 4)
    for (index, segment) in segments.enumerated() {
        precondition(uint(segment, ip + 4, 4) == sequence, "segment \(index) starts at the right sequence number")
        sequence &+= UInt32(segment.count - headers)
        var flags = original[ip + 13]
        if index < segments.count - 1 { flags &= ~0x09 }
        if index > 0 { flags &= ~0x80 }
        precondition(segment[ip + 13] == flags, "segment \(index) has the right flags")
        if !ipv6 {
            precondition(uint(segment, 4, 2) == (uint(original, 4, 2) &+ UInt32(index)) & 0xFFFF, "IPv4 IDs count up")
        }
        // Beyond lengths, IDs, checksums, sequence number and flags, every header byte is the original's.
        var expected = Array(original[0..<headers])
        var actual = Array(segment[0..<headers])
        for offset in (ipv6 ? [4, 5] : [2, 3, 4, 5, 10, 11]) + [ip + 4, ip + 5, ip + 6, ip + 7, ip + 13, ip + 16, ip + 17] {
            expected[offset] = 0
            actual[offset] = 0
        }
        precondition(actual == expected, "segment \(index) keeps the other header fields")
    }
}

func checkJoin(_ input: UnsafeRawBufferPointer) {
    var packets: [IpPacket] = []
    var offset = 0
    while offset + 2 <= input.count {
        let length = Int(input[offset]) << 8 | Int(input[offset + 1])
        offset += 2
        let end = min(input.count, offset + length)
        if let packet = try? IpPacket(copying: input[offset..<end]) { packets.append(packet) }
        offset = end
    }
    guard !packets.isEmpty else { return }
    let frames = coalesce(packets)
    var out: [[UInt8]] = []
    for frame in frames {
        var bytes = frame.bytes
        guard let split = split(&bytes, header: frame.header) else { fatalError("a frame we wrote does not split") }
        if frame.header.gsoType != VirtioNetHeader.GsoType.none { precondition(split.count > 1, "only joined frames are super-packets") }
        out += split
    }
    let given = packets.map(\.bytes)
    precondition(out.count == given.count, "as many packets come out as went in")
    // Flows are written in order of their first packet; compare each packet with its counterpart by content.
    var remaining = given.map(masked)
    for packet in out.map(masked) {
        guard let index = remaining.firstIndex(of: packet) else { fatalError("a packet came out that did not go in") }
        remaining.remove(at: index)
    }
}

/// The bytes the coalescer may change when it joins IPv4 segments: the ID and the header checksum.
func masked(_ packet: [UInt8]) -> [UInt8] {
    guard packet.first.map({ $0 >> 4 == 4 }) == true, packet.count >= 20 else { return packet }
    var copy = packet
    copy.replaceSubrange(4..<6, with: [0, 0])
    copy.replaceSubrange(10..<12, with: [0, 0])
    return copy
}

func headersLength(_ packet: [UInt8]) -> Int {
    let ip = packet[0] >> 4 == 6 ? 40 : Int(packet[0] & 0x0F) * 4
    return ip + Int(packet[ip + 12] >> 4) * 4
}

func split(_ frame: inout [UInt8], header: VirtioNetHeader) -> [[UInt8]]? {
    var packets: [[UInt8]] = []
    let result: Result<Void, TunOffloadError> = frame.withUnsafeMutableBytes { bytes in
        Result { () throws(TunOffloadError) in
            try TunFrameSplitter.split(bytes, header: header, pool: .shared) { buffer, count in
                packets.append(Array(UnsafeRawBufferPointer(start: buffer.base, count: count)))
            }
        }
    }
    guard case .success = result else {
        precondition(packets.isEmpty, "a frame that fails delivers nothing")
        return nil
    }
    return packets
}

struct Frame {
    var header: VirtioNetHeader
    var bytes: [UInt8]
}

func coalesce(_ packets: [IpPacket]) -> [Frame] {
    let coalescer = TunWriteCoalescer()
    var frames: [Frame] = []
    let write: TunWriteCoalescer.Write = { header, bytes in
        frames.append(Frame(header: header, bytes: Array(bytes)))
        return true
    }
    for packet in packets { coalescer.append(packet, write) }
    coalescer.flush(write)
    precondition(coalescer.counts.packets == packets.count && coalescer.counts.writes == frames.count)
    return frames
}
