import Noise
import SansIO
import Testing
import TestSupport
@testable import Tunnel
@testable import TunnelSimulation

@Suite("Node: hostile datagrams")
struct NodeBadInputTests {
    /// Random bytes, truncated and bit-flipped real datagrams, from peers, relays and port 3478: every one is
    /// refused with a typed error or dropped and counted, and the connection keeps working.
    @Test("garbage never crashes the node, never disturbs an established connection")
    func garbage() throws {
        let world = TwoPeers()
        try world.establish()
        var random = SplitMix64(seed: 99)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        let sources = [world.client.socket, world.relay.address, SocketAddress("192.0.2.77:3478")!, SocketAddress("[2001:db8::9]:3478")!]
        let real = try #require(try world.client.node.encapsulate("gateway", packet: UnsafeRawBufferPointer(start: nil, count: 0),
                                                                  into: buffer, now: world.simulation.now))
        let template = Array(buffer[0..<real.count])
        var refused = 0
        for round in 0..<5000 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0:
                bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1:
                bytes = Array(template.prefix(Int.random(in: 0...template.count, using: &random)))
            case 2:
                bytes = template
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
            default:
                // A plausible header: STUN, ChannelData or a WireGuard type, then noise.
                bytes = [[0x00, 0x01], [0x40, 0x00], [0x01, 0x00], [0x04, 0x00]][Int.random(in: 0...3, using: &random)]
                bytes += (0..<Int.random(in: 2...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            buffer.copyBytes(from: bytes)
            let source = sources[Int.random(in: 0..<sources.count, using: &random)]
            do {
                let result = try world.gateway.node.decapsulate(local: world.gateway.socket, from: source, buffer: buffer,
                                                                count: bytes.count, now: world.simulation.now)
                #expect(result == nil, "garbage decrypted to a packet in round \(round)")
            } catch {
                refused += 1
            }
        }
        #expect(refused > 1000)
        #expect(world.gateway.node.statistics.refused == refused)
        try world.client.send(world.ping(1), to: "gateway", in: world.simulation)
        world.simulation.run(for: .milliseconds(50))
        #expect(world.gateway.packets(from: "client").last == world.ping(1))
    }

    /// Anyone with the gateway's public key (every client of the account has it) can send initiations with a
    /// valid MAC1. Past 100 a second the node answers them with cookie replies before the Diffie-Hellman that
    /// would find their initiator (spec §5.6), so a flood costs a MAC each; the client, which answers the cookie,
    /// still connects.
    @Test("a flood of initiations with a valid MAC1 gets cookie replies past 100 a second, before any Diffie-Hellman")
    func handshakeFlood() throws {
        let world = TwoPeers()
        let now = world.simulation.now
        let stranger = WireGuardTunnel(identity: WireGuardIdentity(privateKey: .generatePrivateKey()),
                                       remotePublicKey: world.gateway.node.publicKey, presharedKey: nil, connectionIndex: 9,
                                       now: now, unixTimeNanoseconds: 1_790_000_000_000_000_000)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        #expect(stranger.initiateHandshake(now: now))
        let length = try #require(stranger.pollTransmit(into: buffer, now: now))
        let initiation = Array(buffer[0..<length])
        while world.gateway.node.pollTransmit() != nil {}

        var unknownKey = 0
        for index in 0..<1000 {
            buffer.copyBytes(from: initiation)
            let source = SocketAddress(ip: IpAddress("203.0.113.66")!, port: UInt16(40000 + index % 64))
            do {
                _ = try world.gateway.node.decapsulate(local: world.gateway.socket, from: source, buffer: buffer,
                                                       count: length, now: now)
            } catch NodeError.unknownPeerKey {
                unknownKey += 1
            }
        }
        #expect(unknownKey == WireGuardLimits.handshakesPerSecond, "only the initiations within the budget were opened")
        #expect(world.gateway.node.statistics.cookieRepliesSent == 1000 - WireGuardLimits.handshakesPerSecond)
        var cookieReplies = 0
        while let transmit = world.gateway.node.pollTransmit() {
            if transmit.destination.ip == IpAddress("203.0.113.66")!, transmit.payload.count == WireGuardMessage.cookieReplyLength,
               transmit.payload.first == 3 {
                cookieReplies += 1
            }
        }
        #expect(cookieReplies == 1000 - WireGuardLimits.handshakesPerSecond, "each answered where it came from")
        var underLoad: [TunnelReport] = []
        while let report = world.gateway.node.pollReport() {
            if report.message.hasPrefix("Under load") { underLoad.append(report) }
        }
        #expect(underLoad.map(\.level) == [.info], "one line for the flood, not one per initiation: \(underLoad)")

        // The client connects in the same second: its initiation gets a cookie reply, and its next one carries MAC2.
        try world.establish(within: .seconds(15))
        #expect(world.gateway.packets(from: "client") == [world.ping(0)])
    }
}
