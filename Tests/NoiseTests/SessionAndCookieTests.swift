import Foundation
@testable import Noise
import SansIO
import TestSupport
import Testing

@Suite(.offPool) struct SessionAndCookieTests {
    /// A session roll-over keeps the previous session usable: a packet sent on it before the new handshake
    /// still decrypts after it.
    @Test func packetsInFlightOnTheOldSessionSurviveARollOver() throws {
        let pair = TunnelPair()
        let (_, initiation) = pair.send([0x45, 1], from: pair.alice)
        pair.exchange([initiation], from: pair.alice)
        let oldIndex = try #require(pair.alice.currentSessionIndex)
        let (_, inFlight) = pair.send([0x45, 0xAA], from: pair.alice)

        pair.advance(.milliseconds(20))  // initiations carry increasing timestamps
        #expect(pair.alice.initiateHandshake(now: pair.now))
        pair.exchange(pair.drain(pair.alice), from: pair.alice)
        let newIndex = try #require(pair.alice.currentSessionIndex)
        #expect(newIndex != oldIndex)
        #expect(pair.receive(inFlight, on: pair.bob) == (.writeToTunnel(offset: 16, count: 2), [0x45, 0xAA]))
        let (_, fresh) = pair.send([0x45, 0xBB], from: pair.alice)
        #expect(pair.receive(fresh, on: pair.bob) == (.writeToTunnel(offset: 16, count: 2), [0x45, 0xBB]))
    }

    /// Session indices carry the connection index in their high 24 bits, and up to 8 sessions live side
    /// by side; the ninth handshake reuses the oldest slot.
    @Test func eightSessionsAreAddressedByIndexAlone() throws {
        let pair = TunnelPair()
        var held: [[UInt8]] = []
        var indices: [UInt32] = []
        for round in 0..<9 {
            if round == 0 {
                let (_, initiation) = pair.send([0x45, 0], from: pair.alice)
                pair.exchange([initiation], from: pair.alice)
            } else {
                pair.advance(.milliseconds(20))
                #expect(pair.alice.initiateHandshake(now: pair.now))
                pair.exchange(pair.drain(pair.alice), from: pair.alice)
            }
            let index = try #require(pair.alice.currentSessionIndex)
            indices.append(index)
            #expect(SessionIndexAllocator.connectionIndex(ofReceiverIndex: index) == pair.alice.connectionIndex)
            held.append(pair.send([0x45, UInt8(round)], from: pair.alice).1)
        }
        #expect(Set(indices).count == 9)
        // Sessions 2…9 (8 of them) still decrypt; the first was replaced by the ninth (same slot).
        let first = pair.receive(held[0], on: pair.bob).0
        guard case .error(.unknownSession) = first else {
            Issue.record("the first session should have been replaced, got \(first)")
            return
        }
        for round in 1..<9 {
            #expect(pair.receive(held[round], on: pair.bob) == (.writeToTunnel(offset: 16, count: 2), [0x45, UInt8(round)]))
        }
    }

    /// Under load the second of two initiators gets a cookie reply, and its retry with MAC2 succeeds.
    @Test func cookieReplyUnderLoadThenMac2Succeeds() throws {
        let start = Instant(nanoseconds: 1_000_000_000)
        var now = start
        let bobKey = SecretKey.generatePrivateKey()
        let bobIdentity = WireGuardIdentity(privateKey: bobKey, handshakesPerSecond: 1)
        func tunnelPair(_ index: UInt32) -> (initiator: WireGuardTunnel, responder: WireGuardTunnel) {
            let key = SecretKey.generatePrivateKey()
            let initiator = WireGuardTunnel(
                identity: WireGuardIdentity(privateKey: key), remotePublicKey: bobKey.publicKey, presharedKey: nil,
                connectionIndex: index, now: start, unixTimeNanoseconds: 1_700_000_000_000_000_000,
                random: SplitMix64(seed: UInt64(index)))
            let responder = WireGuardTunnel(
                identity: bobIdentity, remotePublicKey: key.publicKey, presharedKey: nil, connectionIndex: index + 100,
                now: start, unixTimeNanoseconds: 1_700_000_000_000_000_000, random: SplitMix64(seed: UInt64(index) + 7))
            return (initiator, responder)
        }
        let alice = tunnelPair(1)
        let carol = tunnelPair(2)
        func exchange(_ datagram: [UInt8], on tunnel: WireGuardTunnel, from source: [UInt8]) -> (TunnelOutput, [UInt8]) {
            var output = [UInt8](repeating: 0, count: 2048)
            let result = datagram.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { tunnel.decapsulate(input, from: EndpointKey(source), into: $0, now: now) }
            }
            if case .writeToNetwork(let count) = result { return (result, Array(output.prefix(count))) }
            return (result, [])
        }
        func initiation(_ tunnel: WireGuardTunnel) -> [UInt8] {
            var output = [UInt8](repeating: 0, count: 2048)
            _ = tunnel.initiateHandshake(now: now)
            let count = output.withUnsafeMutableBytes { tunnel.pollTransmit(into: $0, now: now) } ?? 0
            return Array(output.prefix(count))
        }

        // Alice's initiation fills the budget of one per second; Carol's, in the same second, gets a cookie.
        let (accepted, response) = exchange(initiation(alice.initiator), on: alice.responder, from: [10, 0, 0, 1, 0, 1])
        #expect(accepted == .writeToNetwork(count: 92))
        #expect(exchange(response, on: alice.initiator, from: [10, 0, 0, 9, 0, 9]).0 == .writeToNetwork(count: 32))
        let (reply, cookieReply) = exchange(initiation(carol.initiator), on: carol.responder, from: [10, 0, 0, 2, 0, 2])
        #expect(reply == .writeToNetwork(count: 64))
        #expect(WireGuardMessage.peek(cookieReply.withUnsafeBytes { $0 }) != nil)
        #expect(exchange(cookieReply, on: carol.initiator, from: [10, 0, 0, 9, 0, 9]).0 == .done)
        #expect(carol.initiator.statistics.cookieRepliesReceived == 1)

        // Later, still under load (Alice again first), Carol's retransmission carries MAC2 and is accepted.
        now = now + .seconds(6)
        #expect(exchange(initiation(alice.initiator), on: alice.responder, from: [10, 0, 0, 1, 0, 1]).0 == .writeToNetwork(count: 92))
        carol.initiator.handleTimeout(now: now)
        var output = [UInt8](repeating: 0, count: 2048)
        let count = try #require(output.withUnsafeMutableBytes { carol.initiator.pollTransmit(into: $0, now: now) })
        let retry = Array(output.prefix(count))
        #expect(retry[132..<148].contains { $0 != 0 }, "MAC2 is set")
        #expect(exchange(retry, on: carol.responder, from: [10, 0, 0, 2, 0, 2]).0 == .writeToNetwork(count: 92))
        // The same retry from another address has no valid cookie: a cookie reply again.
        #expect(exchange(retry, on: carol.responder, from: [10, 0, 0, 3, 0, 3]).0 == .writeToNetwork(count: 64))
    }

    @Test func replayedInitiationIsRejected() {
        let pair = TunnelPair()
        let (_, initiation) = pair.send([1], from: pair.alice)
        #expect(pair.receive(initiation, on: pair.bob).0 == .writeToNetwork(count: 92))
        #expect(pair.receive(initiation, on: pair.bob).0 == .error(.replayedTimestamp))
    }

    @Test func tamperedMessagesAreRefusedAndCounted() {
        let pair = TunnelPair()
        var (_, initiation) = pair.send([1], from: pair.alice)
        initiation[50] ^= 1
        #expect(pair.receive(initiation, on: pair.bob).0 == .error(.invalidMac))
        #expect(pair.receive([1, 2, 3], on: pair.bob).0 == .error(.invalidMessage(length: 3)))
        #expect(pair.bob.statistics.errors == 2)
        #expect(pair.bobIdentity.rejectedMac1Count == 1)
    }

    @Test func allZeroPeerKeyCannotHandshake() throws {
        let identity = WireGuardIdentity(privateKey: SecretKey.generatePrivateKey())
        let zero = try #require(PublicKey(bytes: [UInt8](repeating: 0, count: 32)))
        let tunnel = WireGuardTunnel(identity: identity, remotePublicKey: zero, presharedKey: nil, connectionIndex: 1,
                                     now: Instant(nanoseconds: 0), unixTimeNanoseconds: 0)
        #expect(!tunnel.initiateHandshake(now: Instant(nanoseconds: 0)))
    }

    @Test func connectionIndicesAreDistinctAnd24Bit() {
        var random = SplitMix64(seed: 42)
        var allocator = SessionIndexAllocator(using: &random)
        var seen = Set<UInt32>()
        for _ in 0..<100_000 {
            guard let index = allocator.next() else { break }
            #expect(index <= 0xFF_FFFF)
            seen.insert(index)
        }
        #expect(seen.count == 100_000)
    }
}

@Suite struct KeyTests {
    /// Our Curve25519 derivation and base64 agree with `wg genkey` / `wg pubkey` (wireguard-tools).
    @Test func publicKeysMatchWireGuardTools() throws {
        for _ in 0..<3 {
            let privateText = try shell("wg genkey")
            let publicText = try shell("echo \(privateText) | wg pubkey")
            let key = try #require(SecretKey(base64: privateText))
            #expect(key.publicKey.base64 == publicText)
            #expect(key.base64 == privateText)
            #expect(PublicKey(base64: publicText)?.base64 == publicText)
        }
    }

    @Test func badKeyTextIsRejectedAndSecretsDoNotPrint() {
        #expect(PublicKey(base64: "not base64!") == nil)
        #expect(PublicKey(base64: "AAAA") == nil, "too short")
        #expect(SecretKey(base64: String(repeating: "A", count: 43) + "==") == nil, "31 bytes")
        let key = SecretKey.generatePrivateKey()
        #expect("\(key)" == "SecretKey(redacted)")
        #expect(!"\(key)".contains(key.base64))
    }

    private func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(command) failed: is wireguard-tools installed (scripts/bootstrap)?")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
