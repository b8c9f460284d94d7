import Benchmark
import CSodiumRaw
import Noise
import SansIO

/// The WireGuard data path against the raw libsodium AEAD calls it wraps, in the same run: the ratio is
/// the engine's overhead. Every data-path benchmark must allocate nothing.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(3),
        maxIterations: 10_000_000
    )
    let packetLength = 1280

    Benchmark("Raw libsodium ChaCha20-Poly1305 seal, 1280 bytes in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        _ = sodium_init()
        let key = [UInt8](repeating: 0x42, count: 32)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x61)
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + 16
        var nonce = (UInt32(0), UInt32(0), UInt32(0))
        var length: UInt64 = 0
        benchmark.startMeasurement()
        key.withUnsafeBufferPointer { key in
            for iteration in benchmark.scaledIterations {
                nonce.1 = UInt32(truncatingIfNeeded: iteration)
                withUnsafeBytes(of: &nonce) { nonce in
                    _ = crypto_aead_chacha20poly1305_ietf_encrypt(
                        base, &length, base, UInt64(packetLength), nil, 0, nil,
                        nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!)
                }
            }
        }
        blackHole(length)
    }

    Benchmark("Raw libsodium seal + open, 1280 bytes in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        _ = sodium_init()
        let key = [UInt8](repeating: 0x42, count: 32)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x61)
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + 16
        var nonce = (UInt32(0), UInt32(0), UInt32(0))
        var length: UInt64 = 0
        benchmark.startMeasurement()
        key.withUnsafeBufferPointer { key in
            for iteration in benchmark.scaledIterations {
                nonce.1 = UInt32(truncatingIfNeeded: iteration)
                withUnsafeBytes(of: &nonce) { nonce in
                    let noncePointer = nonce.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    _ = crypto_aead_chacha20poly1305_ietf_encrypt(
                        base, &length, base, UInt64(packetLength), nil, 0, nil, noncePointer, key.baseAddress!)
                    _ = crypto_aead_chacha20poly1305_ietf_decrypt(
                        base, &length, nil, base, UInt64(packetLength + 16), nil, 0, noncePointer, key.baseAddress!)
                }
            }
        }
        blackHole(length)
    }

    Benchmark("WireGuard encapsulate, 1280-byte packet in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let pair = EstablishedPair()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x45)
        let packet = UnsafeRawBufferPointer(rebasing: buffer[16..<(16 + packetLength)])
        let now = pair.now
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(pair.alice.encapsulate(packet, into: buffer, now: now))
        }
    }

    Benchmark("WireGuard encapsulate + decapsulate, 1280 bytes in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let pair = EstablishedPair()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x45)
        let packet = UnsafeRawBufferPointer(rebasing: buffer[16..<(16 + packetLength)])
        let datagram = UnsafeRawBufferPointer(rebasing: buffer[0..<(packetLength + 32)])
        let now = pair.now
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            _ = pair.alice.encapsulate(packet, into: buffer, now: now)
            blackHole(pair.bob.decapsulate(datagram, into: buffer, now: now))
        }
    }

    Benchmark("WireGuard handshake (initiation, response, first data)") { benchmark in
        var unix: Int64 = 1_700_000_000_000_000_000
        for _ in benchmark.scaledIterations {
            unix += 1_000_000
            let pair = EstablishedPair(unixTimeNanoseconds: unix)
            blackHole(pair.alice.currentSessionIndex)
        }
    }
}

/// Two tunnels after a completed handshake, in memory.
final class EstablishedPair {
    let alice: WireGuardTunnel
    let bob: WireGuardTunnel
    let now = Instant(nanoseconds: 1_000_000_000)

    static let aliceKey = SecretKey.generatePrivateKey()
    static let bobKey = SecretKey.generatePrivateKey()
    nonisolated(unsafe) static let aliceIdentity = WireGuardIdentity(privateKey: aliceKey, handshakesPerSecond: .max)
    nonisolated(unsafe) static let bobIdentity = WireGuardIdentity(privateKey: bobKey, handshakesPerSecond: .max)

    init(unixTimeNanoseconds: Int64 = 1_700_000_000_000_000_000) {
        alice = WireGuardTunnel(identity: Self.aliceIdentity, remotePublicKey: Self.bobKey.publicKey, presharedKey: nil,
                                connectionIndex: 1, now: now, unixTimeNanoseconds: unixTimeNanoseconds)
        bob = WireGuardTunnel(identity: Self.bobIdentity, remotePublicKey: Self.aliceKey.publicKey, presharedKey: nil,
                              connectionIndex: 2, now: now, unixTimeNanoseconds: unixTimeNanoseconds)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        _ = alice.initiateHandshake(now: now)
        guard let initiation = alice.pollTransmit(into: buffer, now: now),
              case .writeToNetwork(let response) = bob.decapsulate(UnsafeRawBufferPointer(rebasing: buffer[0..<initiation]), into: buffer, now: now),
              case .writeToNetwork(let keepalive) = alice.decapsulate(UnsafeRawBufferPointer(rebasing: buffer[0..<response]), into: buffer, now: now)
        else { fatalError("benchmark handshake failed") }
        _ = bob.decapsulate(UnsafeRawBufferPointer(rebasing: buffer[0..<keepalive]), into: buffer, now: now)
    }
}
