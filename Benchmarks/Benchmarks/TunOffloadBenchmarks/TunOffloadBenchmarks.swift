import Benchmark
import IpPacket
import TunOffload

/// A TUN device's offloads on the data path: cutting the kernel's 64 KiB TCP super-packet into 1280-byte segments
/// (the client's upload) and joining decrypted segments into one (the gateway's write). Each must allocate nothing.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )
    let pool = PacketBufferPool()

    Benchmark("Split a 64 KiB TCP super-packet into 52 segments of 1280 bytes") { benchmark in
        var frame = try superPacket(payloadCount: 52 * 1_228)
        let header = virtioHeader(gsoSize: 1_228)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try frame.withUnsafeMutableBytes { bytes in
                try TunFrameSplitter.split(bytes, header: header, pool: pool) { (buffer: consuming PacketBuffer, count) in
                    guard let packet = try? IpPacket(buffer: copy buffer, count: count) else { return }
                    _ = consume buffer
                    blackHole(packet.count)
                    pool.recycle(packet)
                }
            }
        }
    }

    Benchmark("Join 52 segments of 1280 bytes into a super-packet and write it") { benchmark in
        var segments: [IpPacket] = []
        var frame = try superPacket(payloadCount: 52 * 1_228)
        try frame.withUnsafeMutableBytes { bytes in
            try TunFrameSplitter.split(bytes, header: virtioHeader(gsoSize: 1_228), pool: pool) { buffer, count in
                segments.append(try! IpPacket(buffer: buffer, count: count))
            }
        }
        let coalescer = TunWriteCoalescer()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for segment in segments { coalescer.append(segment) { blackHole($1.count); return true } }
            coalescer.flush { blackHole($1.count); return true }
        }
    }
}

/// An IPv4 TCP super-packet with timestamps, as the kernel hands it over: its checksum the pseudo-header's sum.
func superPacket(payloadCount: Int) throws -> [UInt8] {
    let options: [UInt8] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
    var bytes = try IpPacket.tcp(source: .v4(IPv4Address(100, 64, 0, 2)), destination: .v4(IPv4Address(10, 77, 0, 5)),
                                 sourcePort: 40_000, destinationPort: 5201, sequenceNumber: 1, acknowledgmentNumber: 1,
                                 flags: [.ack], options: options, payload: [UInt8]()).bytes
    bytes += [UInt8](repeating: 0x61, count: payloadCount)
    bytes[2] = UInt8(bytes.count >> 8)
    bytes[3] = UInt8(bytes.count & 0xFF)
    let tcpLength = bytes.count - 20
    let partial = InternetChecksum.fold(bytes[12..<20].withUnsafeBytes { InternetChecksum.sum($0, initial: 6 + UInt64(tcpLength)) })
    bytes[36] = UInt8(partial >> 8)
    bytes[37] = UInt8(partial & 0xFF)
    return bytes
}

func virtioHeader(gsoSize: Int) -> VirtioNetHeader {
    var header = VirtioNetHeader()
    header.flags = VirtioNetHeader.needsChecksum
    header.gsoTypeValue = VirtioNetHeader.GsoType.tcpV4.rawValue
    header.headerLength = 52
    header.gsoSize = UInt16(gsoSize)
    header.checksumStart = 20
    header.checksumOffset = 16
    return header
}
