import SansIO
import Stun
import Testing
@testable import TurnRelay

/// Clients over TCP or TLS (RFC 8656 §3): the same core, the 5-tuple's transport told apart, and the allocation gone
/// with the connection. The relay's sockets and coturn's and aioice's TCP clients are in `RelayBinaryTests`.
@Suite("TurnRelay: clients on a stream")
struct StreamClientTests {
    @Test("a UDP socket and a TCP connection from the same address and port are two clients with two allocations")
    func transportIsPartOfTheClient() throws {
        let relay = RelayCoreTests.relay(authentication: .coturnRestApi(secret: "s"))
        let udp = RelayProbe(relay, client: "203.0.113.5:40000")
        let stream = RelayProbe(relay, client: "203.0.113.5:40000", transport: .stream)
        for probe in [udp, stream] {
            probe.username = "1900000000:alice"
            probe.password = RelayCredentials.restApiPassword(secret: "s", username: probe.username)
        }
        #expect(udp.allocate()?.isSuccess == true)
        #expect(stream.allocate()?.isSuccess == true, "not 437: the stream is another client")
        #expect(relay.allocationCount == 2)
        #expect(udp.nonce != stream.nonce, "each has its own nonce")
    }

    @Test("ChannelData from a stream client relays to its peer; the peer's answer is marked for the stream")
    func channelDataBothWays() throws {
        let relay = RelayCoreTests.relay()
        let probe = RelayProbe(relay, client: "203.0.113.5:40000", transport: .stream)
        let relayed = try #require(probe.allocate()?.relayedAddresses.first)
        let peer = SocketAddress("198.51.100.7:5000")!
        #expect(probe.authenticated(.channelBind, [.channelNumber(0x4001), .xorPeerAddress(peer)])?.isSuccess == true)
        let up: [UInt8] = [0x40, 0x01, 0x00, 0x03, 1, 2, 3]
        #expect(up.withUnsafeBytes { relay.handleFromClient($0, from: probe.client, over: .stream, now: probe.now, unixTime: probe.unixTime) }
                == .relay(PeerBound(port: relayed.port, peer: peer, payload: 4..<7)))
        #expect(up.withUnsafeBytes { relay.handleFromClient($0, from: probe.client, now: probe.now, unixTime: probe.unixTime) } == .drop,
                "the same address over UDP holds no channel")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let back = relay.relayFromPeer(buffer, count: 5, from: peer, port: relayed.port, now: probe.now)
        #expect(back == ClientBound(client: probe.client, transport: .stream, count: 9))
    }

    @Test("the stream closing frees its allocation and closes the port; a UDP client at the same address keeps its own")
    func closingFrees() throws {
        let relay = RelayCoreTests.relay()
        let udp = RelayProbe(relay, client: "203.0.113.5:40000", salt: "udp")
        let stream = RelayProbe(relay, client: "203.0.113.5:40000", salt: "tcp", transport: .stream)
        let udpPort = try #require(udp.allocate()?.relayedAddresses.first?.port)
        let streamPort = try #require(stream.allocate()?.relayedAddresses.first?.port)
        while relay.pollEvent() != nil {}
        relay.streamClosed(stream.client, now: stream.now)
        #expect(relay.pollEvent() == .portClosed(port: streamPort))
        #expect(relay.allocationCount == 1 && relay.clientByPort[udpPort] != nil)
        #expect(udp.authenticated(.refresh)?.isSuccess == true)
        #expect(stream.ask(.refresh)?.errorCode == 438, "its nonce went with the connection: a new one first")
        #expect(stream.ask(.refresh)?.errorCode == 437, "then: no allocation")
    }
}
