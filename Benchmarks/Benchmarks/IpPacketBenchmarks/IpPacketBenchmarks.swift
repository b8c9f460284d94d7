import Benchmark
import IpPacket

/// The data path's per-packet work on IP packets: parsing and NAT. Each must allocate nothing.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(3),
        maxIterations: 10_000_000
    )

    Benchmark("Parse 1280-byte IPv4 TCP packet", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let buffer = PacketBuffer()
        let template = try IpPacket.tcp(
            source: .v4(IPv4Address(100, 64, 0, 1)), destination: .v4(IPv4Address(192, 0, 2, 10)),
            sourcePort: 40000, destinationPort: 443, flags: [.ack, .psh],
            payload: [UInt8](repeating: 0x61, count: 1280 - 40))
        template.withUnsafeBytes { _ = buffer.copy(from: $0) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try IpPacket(buffer: buffer, count: 1280))
        }
    }

    Benchmark("Route 1280-byte IPv4 TCP packet (source, destination, both ports)",
              configuration: .init(scalingFactor: .kilo)) { benchmark in
        let packet = try IpPacket.tcp(
            source: .v4(IPv4Address(100, 64, 0, 1)), destination: .v4(IPv4Address(192, 0, 2, 10)),
            sourcePort: 40000, destinationPort: 443, flags: [.ack, .psh],
            payload: [UInt8](repeating: 0x61, count: 1280 - 40))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(packet.source)
            blackHole(packet.destination)
            blackHole(try packet.sourceKey)
            blackHole(try packet.destinationKey)
        }
    }

    Benchmark("Parse 64-byte IPv6 UDP packet", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let buffer = PacketBuffer()
        let template = try IpPacket.udp(
            source: .v6(IPv6Address(high: 0xfd00_2021_1111_0000, low: 1)),
            destination: .v6(IPv6Address(high: 0x2001_0db8_0000_0000, low: 0x10)),
            sourcePort: 40000, destinationPort: 53, payload: [UInt8](repeating: 0x61, count: 64))
        template.withUnsafeBytes { _ = buffer.copy(from: $0) }
        let count = template.count
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try IpPacket(buffer: buffer, count: count))
        }
    }

    Benchmark("NAT rewrite of destination address and source port (1280-byte TCP)",
              configuration: .init(scalingFactor: .kilo)) { benchmark in
        var packet = try IpPacket.tcp(
            source: .v4(IPv4Address(100, 64, 0, 1)), destination: .v4(IPv4Address(100, 96, 0, 1)),
            sourcePort: 40000, destinationPort: 443, flags: [.ack, .psh],
            payload: [UInt8](repeating: 0x61, count: 1280 - 40))
        let destinations: [IpAddress] = [.v4(IPv4Address(192, 0, 2, 10)), .v4(IPv4Address(100, 96, 0, 1))]
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            try packet.translateDestination(destinations[iteration & 1], sourceKey: UInt16(truncatingIfNeeded: iteration))
        }
        blackHole(packet.tcp?.checksum)
    }

    Benchmark("Full checksum recomputation (1280-byte TCP)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var packet = try IpPacket.tcp(
            source: .v4(IPv4Address(100, 64, 0, 1)), destination: .v4(IPv4Address(192, 0, 2, 10)),
            sourcePort: 40000, destinationPort: 443, flags: [.ack, .psh],
            payload: [UInt8](repeating: 0x61, count: 1280 - 40))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            packet.computeChecksums()
        }
        blackHole(packet.tcp?.checksum)
    }
}
