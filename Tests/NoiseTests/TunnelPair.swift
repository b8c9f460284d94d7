import Noise
import TestSupport
import SansIO

/// Two tunnels wired back to back in memory, with a virtual clock.
final class TunnelPair {
    let aliceKey = SecretKey.generatePrivateKey()
    let bobKey = SecretKey.generatePrivateKey()
    let alice: WireGuardTunnel
    let bob: WireGuardTunnel
    let aliceIdentity: WireGuardIdentity
    let bobIdentity: WireGuardIdentity
    let start = Instant(nanoseconds: 1_000_000_000)
    var now: Instant

    init(presharedKey: SecretKey? = nil, bobPresharedKey: SecretKey? = nil, seed: UInt64 = 1,
         handshakesPerSecond: Int = WireGuardLimits.handshakesPerSecond) {
        now = start
        aliceIdentity = WireGuardIdentity(privateKey: aliceKey, handshakesPerSecond: handshakesPerSecond)
        bobIdentity = WireGuardIdentity(privateKey: bobKey, handshakesPerSecond: handshakesPerSecond)
        alice = WireGuardTunnel(identity: aliceIdentity, remotePublicKey: bobKey.publicKey, presharedKey: presharedKey,
                                connectionIndex: 0xA1, now: start, unixTimeNanoseconds: 1_700_000_000_000_000_000,
                                random: SplitMix64(seed: seed))
        bob = WireGuardTunnel(identity: bobIdentity, remotePublicKey: aliceKey.publicKey,
                              presharedKey: bobPresharedKey ?? presharedKey, connectionIndex: 0xB2, now: start,
                              unixTimeNanoseconds: 1_700_000_000_000_000_000, random: SplitMix64(seed: seed + 1))
    }

    func advance(_ duration: Duration) {
        now = now + duration
    }

    /// Encapsulates on `from`; returns what it wants sent.
    func send(_ payload: [UInt8], from tunnel: WireGuardTunnel) -> (TunnelOutput, [UInt8]) {
        var output = [UInt8](repeating: 0, count: 2048)
        let result = payload.withUnsafeBytes { packet in
            output.withUnsafeMutableBytes { tunnel.encapsulate(packet, into: $0, now: now) }
        }
        if case .writeToNetwork(let count) = result { return (result, Array(output.prefix(count))) }
        return (result, [])
    }

    /// Decapsulates `datagram` on `to`; returns the result and the bytes it wrote.
    func receive(_ datagram: [UInt8], on tunnel: WireGuardTunnel, from source: [UInt8] = [10, 0, 0, 1, 0, 80])
        -> (TunnelOutput, [UInt8]) {
        var output = [UInt8](repeating: 0, count: 2048)
        let result = datagram.withUnsafeBytes { datagram in
            output.withUnsafeMutableBytes {
                tunnel.decapsulate(datagram, from: EndpointKey(source), into: $0, now: now)
            }
        }
        switch result {
        case .writeToNetwork(let count): return (result, Array(output.prefix(count)))
        case let .writeToTunnel(offset, count): return (result, Array(output[offset..<(offset + count)]))
        default: return (result, [])
        }
    }

    /// Everything `tunnel` has to send from timers and its queue.
    func drain(_ tunnel: WireGuardTunnel) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        var output = [UInt8](repeating: 0, count: 2048)
        while let count = output.withUnsafeMutableBytes({ tunnel.pollTransmit(into: $0, now: now) }) {
            messages.append(Array(output.prefix(count)))
        }
        return messages
    }

    /// Delivers messages back and forth until both sides are quiet; returns what reached each TUN.
    @discardableResult
    func exchange(_ initial: [[UInt8]], from first: WireGuardTunnel) -> (alice: [[UInt8]], bob: [[UInt8]]) {
        var delivered: (alice: [[UInt8]], bob: [[UInt8]]) = ([], [])
        var inFlight: [([UInt8], WireGuardTunnel)] = initial.map { ($0, first === alice ? bob : alice) }
        var rounds = 0
        while !inFlight.isEmpty, rounds < 1000 {
            rounds += 1
            let (datagram, target) = inFlight.removeFirst()
            let other = target === alice ? bob : alice
            let (result, bytes) = receive(datagram, on: target)
            switch result {
            case .writeToNetwork: inFlight.append((bytes, other))
            case .writeToTunnel:
                if target === alice { delivered.alice.append(bytes) } else { delivered.bob.append(bytes) }
            default: break
            }
            for message in drain(target) { inFlight.append((message, other)) }
        }
        return delivered
    }
}
