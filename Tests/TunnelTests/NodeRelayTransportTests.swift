import Noise
import SansIO
import Stun
import Testing
import Turn
import TurnRelay
@testable import Tunnel

/// A relay that UDP cannot reach (spec `snownet.md` §3 has no such case; issue 23): the node allocates over TCP, then
/// over TLS on 443, tags what it sends there for the IO layer's stream, and moves back to UDP when a BINDING over UDP
/// is answered. The IO side (streams, nftables) is in `EndToEndUdpBlockedTests`.
@Suite("Node: relays over TCP and TLS when UDP is blocked")
struct NodeRelayTransportTests {
    let relay = SocketAddress("192.0.2.1:3478")!
    static let secret = "relay-secret"
    let credentials = TurnCredentials(username: "1900000000:salt", password: RelayCredentials.firezonePassword(secret: secret, expiresAt: 1_900_000_000,
                                                                                                               salt: "salt"), realm: "firezone")

    func node() -> (Node<String>, Instant) {
        let now = Instant(nanoseconds: 1_000_000_000)
        let node = Node<String>(role: .client, privateKey: SecretKey(bytes: [UInt8](repeating: 7, count: 32))!, now: now,
                                unixTimeNanoseconds: 1_800_000_000_000_000_000, random: SplitMix64(seed: 3))
        node.updateRelays(removing: [], adding: [RelayDescription(id: "r1", server: RelayServer(ipv4: relay), credentials: credentials)], now: now)
        return (node, now)
    }

    /// Runs the node's timers without answering anything until `until` holds; every transmit sent meanwhile.
    func silence(_ node: Node<String>, from start: Instant, for duration: Duration, until done: (Node<String>) -> Bool = { _ in false })
        -> (now: Instant, sent: [NodeTransmit]) {
        var now = start, sent: [NodeTransmit] = []
        while now < start + duration {
            while let transmit = node.pollTransmit() { sent.append(transmit) }
            if done(node) { break }
            now = min(node.pollTimeout() ?? start + duration, start + duration)
            node.handleTimeout(now: now)
        }
        while let transmit = node.pollTransmit() { sent.append(transmit) }
        return (now, sent)
    }

    func reports(_ node: Node<String>) -> [String] {
        var lines: [String] = []
        while let report = node.pollReport() { lines.append(report.message) }
        return lines
    }

    @Test("no answer over UDP: TCP to the same address; none over TCP: TLS on 443 naming the address; none over TLS: the relay is dropped")
    func fallsBackInOrder() {
        let (node, start) = node()
        #expect(node.relayStreams.isEmpty && node.relayStreamsGeneration == 0)
        let udp = silence(node, from: start, for: .seconds(20)) { !$0.relayStreams.isEmpty }
        #expect(udp.sent.contains { $0.destination == relay && $0.transport == .udp })
        #expect(udp.now - start < .seconds(9), "after the BINDING's 8 s of retransmissions")
        #expect(node.relayStreams == [relay: .tcp] && node.relayStreamsGeneration == 1)
        #expect(reports(node).contains("Relay unreachable over udp; trying tcp"))

        let tcp = silence(node, from: udp.now, for: .seconds(20)) { $0.relayStreams[SocketAddress("192.0.2.1:443")!] != nil }
        let overTcp = tcp.sent.filter { $0.transport == .tcp }
        #expect(!overTcp.isEmpty && overTcp.allSatisfy { $0.destination == relay } && !tcp.sent.contains { $0.transport == .udp },
                "\(tcp.sent.map(\.transport))")
        #expect(node.relayStreams == [SocketAddress("192.0.2.1:443")!: .tls(serverName: "192.0.2.1")] && node.relayStreamsGeneration == 2)
        #expect(reports(node).contains("Relay unreachable over tcp; trying tls"))

        let tls = silence(node, from: tcp.now, for: .seconds(12))
        #expect(tls.sent.contains { $0.transport == .tls(serverName: "192.0.2.1") })
        #expect(node.relayStreams.isEmpty && node.relayViews.isEmpty, "TLS was the last resort")
        #expect(reports(node).contains("Disconnecting from relay"))
    }

    /// Our relay's core answering what the node sends over TCP (UDP stays blocked): the node's view of a working stream.
    func exchange(_ node: Node<String>, with core: RelayCore, from start: Instant, for duration: Duration) throws -> (now: Instant, udp: [NodeTransmit]) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        var now = start, udp: [NodeTransmit] = []
        while now < start + duration {
            while let transmit = node.pollTransmit() {
                guard transmit.transport == .tcp else {
                    udp.append(transmit)
                    continue
                }
                let outcome = transmit.payload.withUnsafeBytes {
                    core.handleFromClient($0, from: SocketAddress("198.51.100.7:50000")!, over: .stream, now: now, unixTime: 1_800_000_000)
                }
                guard case .answer(let answer) = outcome else { continue }
                buffer.copyBytes(from: answer)
                _ = try node.decapsulate(local: relay, from: relay, buffer: buffer, count: answer.count, now: now)
            }
            now = min(node.pollTimeout() ?? start + duration, start + duration)
            node.handleTimeout(now: now)
        }
        return (now, udp)
    }

    @Test("on a working stream, a BINDING over UDP every 20 s; its answer moves the relay back to UDP")
    func movesBackWhenUdpAnswers() throws {
        let (node, start) = node()
        let fallen = silence(node, from: start, for: .seconds(20)) { !$0.relayStreams.isEmpty }
        let core = RelayCore(configuration: RelayConfiguration(publicIPv4: IPv4Address(192, 0, 2, 1), authentication: .firezone(secret: Self.secret)))
        let onStream = try exchange(node, with: core, from: fallen.now, for: .seconds(21))
        #expect(core.allocationCount == 1 && node.relayStreams == [relay: .tcp], "allocated over the stream and kept")
        #expect(reports(node).contains("Allocated on relay"))
        let probes = onStream.udp
        #expect(probes.count == 1 && probes.first?.destination == relay, "one probe over UDP in 21 s: \(probes)")
        let probe = try #require(probes.first.flatMap { try? StunMessage(decoding: $0.payload) })
        #expect(probe.method == .binding && probe.messageClass == .request)

        let answer = StunMessage(class: .successResponse, method: .binding, transactionId: probe.transactionId,
                                 attributes: [.xorMappedAddress(SocketAddress("198.51.100.7:40000")!)]).encode()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: answer)
        let result = try node.decapsulate(local: SocketAddress("198.51.100.7:40000")!, from: relay, buffer: buffer, count: answer.count,
                                          now: onStream.now)
        #expect(result == nil)
        #expect(node.relayStreams.isEmpty && node.relayStreamsGeneration == 2)
        #expect(reports(node).contains("Relay reachable over UDP again; moving back from tcp"))
        let next = node.pollTransmit()
        #expect(next?.transport == .udp && next?.destination == relay, "the new allocation starts over UDP")
    }

    @Test("the portal sending the relay again keeps it on its stream while UDP fails")
    func portalResendKeepsTheStream() {
        let (node, start) = node()
        let fallen = silence(node, from: start, for: .seconds(20)) { !$0.relayStreams.isEmpty }
        node.updateRelays(removing: [], adding: [RelayDescription(id: "r1", server: RelayServer(ipv4: relay), credentials: credentials)],
                          now: fallen.now)
        #expect(node.relayStreams == [relay: .tcp])
        node.updateRelays(removing: ["r1"], adding: [], now: fallen.now)
        #expect(node.relayStreams.isEmpty && node.relayStreamsGeneration == 2)
    }
}
