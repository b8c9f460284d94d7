import Benchmark
import SansIO
import Stun
import Turn

/// STUN codec costs on typical TURN messages, and the ChannelData path, which must not allocate.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(2),
        maxIterations: 10_000_000
    )
    let key = StunKey.longTerm(username: "1700003600:salt", realm: "firezone", password: "secret")
    let allocateResponse = StunMessage(class: .successResponse, method: .allocate, transactionId: .random(), attributes: [
        .xorRelayedAddress(SocketAddress("192.0.2.1:50000")!), .xorRelayedAddress(SocketAddress("[2001:db8::1]:50000")!),
        .xorMappedAddress(SocketAddress("198.51.100.7:40000")!), .lifetime(seconds: 600), .software("firezone-relay; rev=1234abcd"),
    ]).encode(integrity: .sha1(key: key))
    let channelBind = StunMessage(class: .request, method: .channelBind, transactionId: .random(), attributes: [
        .xorPeerAddress(SocketAddress("203.0.113.1:51820")!), .channelNumber(0x4000), .software("snownet"),
        .username("1700003600:salt"), .realm("firezone"), .nonce("6c1c0c4b-8d5c-4b8e-9a1e-3f8f1c1d2e3f"),
    ])

    Benchmark("STUN decode + verify: Allocate success response (dual stack, signed)") { benchmark in
        for _ in benchmark.scaledIterations {
            let message = try StunMessage(decoding: allocateResponse)
            blackHole(message.verifyIntegrity(key: key))
        }
    }

    Benchmark("STUN encode + sign: ChannelBind request") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(channelBind.encode(integrity: .sha1(key: key)))
        }
    }

    Benchmark("ChannelData wrap (header in place), 1280-byte payload", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1316, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x45)
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            blackHole(try ChannelData.writeHeader(channel: 0x4000 + UInt16(iteration & 0xFF), payloadLength: 1280, into: buffer))
        }
    }

    Benchmark("ChannelData unwrap, 1280-byte payload", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let frame = try ChannelData.encode(channel: 0x4000, payload: [UInt8](repeating: 0x45, count: 1280))
        try frame.withUnsafeBytes { datagram in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try ChannelData.decode(datagram).payload)
            }
        }
    }

    Benchmark("Classify a datagram (STUN / ChannelData / other)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        try allocateResponse.withUnsafeBytes { datagram in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(DatagramKind.classify(datagram))
            }
        }
    }
}
