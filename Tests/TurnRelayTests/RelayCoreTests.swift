import SansIO
import Stun
import Testing
@testable import TurnRelay

/// The relay core against raw requests, one rule at a time (spec `snownet.md` §3.11, §7; RFC 8656 where §3.11 is
/// silent).
@Suite("TurnRelay: the relay core's answers")
struct RelayCoreTests {
    static let secret = "relay-secret"

    static func relay(ipv6: Bool = false, ports: ClosedRange<UInt16> = 49152...65535,
                      authentication: RelayAuthentication = .firezone(secret: secret)) -> RelayCore {
        var configuration = RelayConfiguration(publicIPv4: IPv4Address(192, 0, 2, 1),
                                               publicIPv6: ipv6 ? IPv6Address("2001:db8::1") : nil, authentication: authentication)
        configuration.ports = ports
        return RelayCore(configuration: configuration, random: SplitMix64(seed: 7))
    }

    @Test("BINDING: XOR-MAPPED-ADDRESS and SOFTWARE, never signed, even when the request names a user")
    func binding() throws {
        let probe = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        let answer = try #require(probe.ask(.binding, signed: true))
        #expect(answer.isSuccess && !answer.hasIntegrity)
        #expect(answer.first { if case .xorMappedAddress(let a) = $0 { a } else { nil } } == probe.client)
        #expect(answer.first { if case .software(let s) = $0 { s } else { nil } }?.hasPrefix("firezone-relay") == true)
    }

    @Test("ALLOCATE: 401 with realm and nonce first, then a relayed port of the range, 600 s, the client's address, signed")
    func allocate() throws {
        let probe = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        let challenge = try #require(probe.ask(.allocate, [.requestedTransport(17)]))
        #expect(challenge.errorCode == 401 && challenge.first { if case .realm(let r) = $0 { r } else { nil } } == "firezone")
        #expect(challenge.verifyIntegrity(key: probe.key), "signed: the request named a known user")
        let answer = try #require(probe.ask(.allocate, [.requestedTransport(17)]))
        #expect(answer.isSuccess && answer.verifyIntegrity(key: probe.key))
        let relayed = try #require(answer.relayedAddresses.first)
        #expect(relayed.ip == IpAddress("192.0.2.1")! && (49152...65535).contains(relayed.port) && answer.lifetime == 600)
        #expect(probe.relay.pollEvent() == .portOpened(port: relayed.port, families: [.v4]))
        #expect(probe.ask(.allocate, [.requestedTransport(17)])?.errorCode == 437, "one allocation per client socket")
    }

    @Test("credentials: wrong password, expired or malformed usernames and unsigned requests get 401")
    func credentials() throws {
        let wrong = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        wrong.password = "not-it"
        #expect(wrong.allocate()?.errorCode == 401)
        #expect(wrong.relay.statistics.authenticationFailures == 1)
        let expired = RelayProbe(Self.relay(), client: "203.0.113.5:40000", expiresAt: 1_700_000_000)
        #expect(expired.allocate()?.errorCode == 401)
        let otherSecret = RelayProbe(Self.relay(), client: "203.0.113.5:40000", secret: "another")
        #expect(otherSecret.allocate()?.errorCode == 401)
        let malformed = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        malformed.username = "no-expiry"
        #expect(malformed.allocate()?.errorCode == 401)
        let unsigned = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        #expect(unsigned.ask(.allocate, [.requestedTransport(17)], signed: false)?.errorCode == 401)
    }

    @Test("nonces belong to the socket they were given to and sign 10 000 requests; then 438 with a fresh one")
    func nonces() throws {
        let relay = Self.relay()
        let first = RelayProbe(relay, client: "203.0.113.5:40000")
        #expect(first.allocate()?.isSuccess == true)
        let other = RelayProbe(relay, client: "203.0.113.5:40001", salt: "other")
        other.nonce = first.nonce
        let stale = try #require(other.ask(.allocate, [.requestedTransport(17)]))
        #expect(stale.errorCode == 438 && stale.verifyIntegrity(key: other.key))
        #expect(other.ask(.allocate, [.requestedTransport(17)])?.isSuccess == true)

        let used = first.nonce
        for _ in 0..<(10_000 - 1) { #expect(first.ask(.refresh)?.isSuccess == true) }  // the ALLOCATE was the first use
        #expect(first.nonce == used)
        let exhausted = try #require(first.ask(.refresh))
        #expect(exhausted.errorCode == 438 && first.nonce != used)
        #expect(first.ask(.refresh)?.isSuccess == true)
    }

    @Test("REQUESTED-TRANSPORT must be UDP; address families as Firezone's relay reads them")
    func transportAndFamilies() throws {
        let probe = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        #expect(probe.allocate([])?.errorCode == 400)
        #expect(probe.allocate([.requestedTransport(6)])?.errorCode == 400)
        #expect(probe.allocate([.requestedTransport(17), .requestedAddressFamily(1), .additionalAddressFamily(2)])?.errorCode == 400)
        #expect(probe.allocate([.requestedTransport(17), .additionalAddressFamily(1)])?.errorCode == 400)
        #expect(probe.allocate([.requestedTransport(17), .requestedAddressFamily(2)])?.errorCode == 440)
        let partial = try #require(probe.allocate([.requestedTransport(17), .additionalAddressFamily(2)]))
        #expect(partial.isSuccess && partial.relayedAddresses.count == 1, "IPv4 only on a single-stack relay")

        let dual = RelayProbe(Self.relay(ipv6: true), client: "203.0.113.6:40000")
        let both = try #require(dual.allocate([.requestedTransport(17), .additionalAddressFamily(2)]))
        #expect(both.relayedAddresses.map(\.ip.version) == [.v4, .v6] && Set(both.relayedAddresses.map(\.port)).count == 1)
        let v6 = RelayProbe(dual.relay, client: "[2001:db8::5]:40000", salt: "v6")
        #expect(v6.allocate([.requestedTransport(17), .requestedAddressFamily(2)])?.relayedAddresses.map(\.ip.version) == [.v6])
    }

    @Test("one allocation per username under Firezone's credentials (#12319); coturn's REST credentials may share one")
    func oneAllocationPerUsername() throws {
        let relay = Self.relay()
        let old = RelayProbe(relay, client: "203.0.113.5:40000")
        let oldPort = try #require(old.allocate()?.relayedAddresses.first?.port)
        let rebound = RelayProbe(relay, client: "203.0.113.5:41000")
        #expect(rebound.allocate()?.isSuccess == true)
        #expect(relay.allocationCount == 1 && relay.statistics.allocationsFreedByUsername == 1)
        #expect(Array(sequence(state: relay) { $0.pollEvent() }).contains(.portClosed(port: oldPort)))

        let rest = Self.relay(authentication: .coturnRestApi(secret: "rest"))
        for port in [40000, 40001] {
            let probe = RelayProbe(rest, client: "203.0.113.5:\(port)")
            probe.username = "1900000000:alice"
            probe.password = RelayCredentials.restApiPassword(secret: "rest", username: probe.username)
            #expect(probe.allocate()?.isSuccess == true)
        }
        #expect(rest.allocationCount == 2)
    }

    @Test("REFRESH: the lifetime asked for up to an hour, LIFETIME 0 deletes, no allocation 437; expiry frees the port")
    func refreshAndExpiry() throws {
        let probe = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        #expect(probe.authenticated(.refresh)?.errorCode == 437)
        let port = try #require(probe.allocate()?.relayedAddresses.first?.port)
        #expect(probe.relay.pollTimeout() == probe.now + .seconds(600))
        #expect(probe.ask(.refresh, [.lifetime(seconds: 7200)])?.lifetime == 3600)
        #expect(probe.relay.pollTimeout() == probe.now + .seconds(3600), "the deadline follows every refresh")
        #expect(probe.ask(.refresh, [.lifetime(seconds: 60)])?.lifetime == 60)
        #expect(probe.relay.pollTimeout() == probe.now + .seconds(60))
        #expect(probe.ask(.refresh)?.lifetime == 600)
        #expect(probe.relay.pollTimeout() == probe.now + .seconds(600))
        _ = probe.relay.pollEvent()
        probe.relay.handleTimeout(now: probe.now + .seconds(599))
        #expect(probe.relay.allocationCount == 1)
        probe.relay.handleTimeout(now: probe.now + .seconds(600))
        #expect(probe.relay.allocationCount == 0 && probe.relay.pollEvent() == .portClosed(port: port))
        #expect(probe.relay.pollTimeout() == nil, "nothing left to expire")

        #expect(probe.allocate()?.isSuccess == true)
        #expect(probe.ask(.refresh, [.lifetime(seconds: 0)])?.lifetime == 0)
        #expect(probe.relay.allocationCount == 0)
    }

    @Test("CHANNEL-BIND: the number's range, the peer's family, one peer per number and one number per peer through the cool-down")
    func channelBind() throws {
        let probe = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        #expect(probe.authenticated(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(SocketAddress("198.51.100.7:5000")!)])?.errorCode == 437)
        #expect(probe.allocate()?.isSuccess == true)
        let peer = SocketAddress("198.51.100.7:5000")!, other = SocketAddress("198.51.100.8:5000")!
        #expect(probe.ask(.channelBind, [.channelNumber(0x3FFF), .xorPeerAddress(peer)])?.errorCode == 400)
        #expect(probe.ask(.channelBind, [.channelNumber(0x5000), .xorPeerAddress(peer)])?.errorCode == 400)
        #expect(probe.ask(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(SocketAddress("[2001:db8::7]:5000")!)])?.errorCode == 443)
        #expect(probe.ask(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(peer)])?.isSuccess == true)
        #expect(probe.ask(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(peer)])?.isSuccess == true, "re-binding refreshes")
        #expect(probe.ask(.channelBind, [.channelNumber(0x4001), .xorPeerAddress(peer)])?.errorCode == 400)
        #expect(probe.ask(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(other)])?.errorCode == 400)
        #expect(probe.ask(.createPermission, [.xorPeerAddress(other)])?.isSuccess == true, "accepted without effect")
        #expect(probe.relay.channelCount == 1)
        #expect(probe.ask(.refresh, [.lifetime(seconds: 3600)])?.lifetime == 3600)

        probe.now = probe.now + .seconds(601)
        _ = probe.ask(.refresh)
        probe.relay.handleTimeout(now: probe.now)
        #expect(probe.ask(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(other)])?.errorCode == 400, "in the cool-down")
        probe.now = probe.now + .seconds(300)
        _ = probe.ask(.refresh)
        probe.relay.handleTimeout(now: probe.now)
        #expect(probe.ask(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(other)])?.isSuccess == true, "after the cool-down")
        #expect(probe.relay.channelCount == 1)
        #expect(probe.ask(.refresh, [.lifetime(seconds: 0)])?.isSuccess == true)
        #expect(probe.relay.channelCount == 0, "a freed allocation takes its channels along")
    }

    @Test("ChannelData both ways on a bound channel; unbound channels, strangers and port 0 dropped and counted")
    func dataPath() throws {
        let probe = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        let port = try #require(probe.allocate()?.relayedAddresses.first?.port)
        let peer = SocketAddress("198.51.100.7:5000")!
        #expect(probe.ask(.channelBind, [.channelNumber(0x4001), .xorPeerAddress(peer)])?.isSuccess == true)
        let relay = probe.relay

        let up: [UInt8] = [0x40, 0x01, 0x00, 0x03, 7, 8, 9]
        let forward = up.withUnsafeBytes { relay.handleFromClient($0, from: probe.client, now: probe.now, unixTime: probe.unixTime) }
        #expect(forward == .relay(PeerBound(port: port, peer: peer, payload: 4..<7)))
        let padded: [UInt8] = up + [0]
        #expect(padded.withUnsafeBytes { relay.handleFromClient($0, from: probe.client, now: probe.now, unixTime: probe.unixTime) }
                == .relay(PeerBound(port: port, peer: peer, payload: 4..<7)), "padding tolerated")
        let unbound: [UInt8] = [0x40, 0x02, 0x00, 0x01, 7]
        #expect(unbound.withUnsafeBytes { relay.handleFromClient($0, from: probe.client, now: probe.now, unixTime: probe.unixTime) } == .drop)
        #expect(up.withUnsafeBytes { relay.handleFromClient($0, from: SocketAddress("203.0.113.9:1")!, now: probe.now, unixTime: 0) } == .drop)
        #expect(up.withUnsafeBytes { relay.handleFromClient($0, from: SocketAddress("203.0.113.5:0")!, now: probe.now, unixTime: 0) } == .drop)

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: [0, 0, 0, 0, 1, 2, 3, 4, 5])
        let back = relay.relayFromPeer(buffer, count: 5, from: peer, port: port, now: probe.now)
        #expect(back == ClientBound(client: probe.client, transport: .udp, count: 9))
        #expect(Array(buffer[0..<9]) == [0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        #expect(relay.relayFromPeer(buffer, count: 5, from: SocketAddress("198.51.100.99:5000")!, port: port, now: probe.now) == nil)
        #expect(relay.relayFromPeer(buffer, count: 5, from: SocketAddress("198.51.100.7:0")!, port: port, now: probe.now) == nil)
        #expect(relay.statistics.relayedToPeers == 2 && relay.statistics.relayedToClients == 1)
        #expect(relay.statistics.dropped == 3 && relay.statistics.fromPortZero == 2)
    }

    @Test("a range of two ports holds two allocations; the third client gets 508")
    func insufficientCapacity() throws {
        let relay = Self.relay(ports: 50000...50001)
        for (index, port) in [40000, 40001, 40002].enumerated() {
            let probe = RelayProbe(relay, client: "203.0.113.5:\(port)", salt: "user\(index)")
            let answer = try #require(probe.allocate())
            #expect(index < 2 ? answer.isSuccess : answer.errorCode == 508)
        }
    }

    @Test("a flood of unauthenticated requests from many sockets keeps the nonce table bounded")
    func boundedNonces() {
        var configuration = RelayConfiguration(publicIPv4: IPv4Address(192, 0, 2, 1), authentication: .firezone(secret: Self.secret))
        configuration.maximumNonces = 100
        let relay = RelayCore(configuration: configuration)
        for port in 1...5_000 {
            let probe = RelayProbe(relay, client: "203.0.113.5:\(port)")
            _ = probe.ask(.allocate, [.requestedTransport(17)], signed: false)
            #expect(relay.nonces.count <= 100)
        }
        #expect(relay.statistics.errorResponses[401] == 5_000)
    }

    @Test("EVEN-PORT is understood (an even port); RESERVATION-TOKEN is not (420); REST credentials accept RFC 5766 channels")
    func coturnClientsAttributes() throws {
        let relay = Self.relay(authentication: .coturnRestApi(secret: "rest"))
        let probe = RelayProbe(relay, client: "203.0.113.5:40000")
        probe.username = "1900000000:alice"
        probe.password = RelayCredentials.restApiPassword(secret: "rest", username: probe.username)
        let evenPort = StunAttribute.other(type: 0x0018, value: [0x80, 0, 0, 0])
        let answer = try #require(probe.allocate([.requestedTransport(17), evenPort]))
        #expect(answer.isSuccess && answer.relayedAddresses.first.map { $0.port % 2 == 0 } == true, "\(answer)")
        let other = RelayProbe(relay, client: "203.0.113.5:40001")
        other.username = probe.username
        other.password = probe.password
        let token = StunAttribute.other(type: 0x0022, value: [UInt8](repeating: 1, count: 8))
        #expect(other.allocate([.requestedTransport(17), token])?.errorCode == 420)
        let peer = SocketAddress("198.51.100.7:5000")!
        #expect(probe.ask(.channelBind, [.channelNumber(0x5DA1), .xorPeerAddress(peer)])?.isSuccess == true)
        #expect(relay.channelCount == 1 && relay.allocationCount == 1)
        let data: [UInt8] = [0x5D, 0xA1, 0x00, 0x01, 9]
        #expect(data.withUnsafeBytes { relay.handleFromClient($0, from: probe.client, now: probe.now, unixTime: probe.unixTime) }
                != .drop)
        let firezone = RelayProbe(Self.relay(), client: "203.0.113.5:40000")
        #expect(firezone.allocate()?.isSuccess == true)
        #expect(firezone.ask(.channelBind, [.channelNumber(0x5DA1), .xorPeerAddress(peer)])?.errorCode == 400, "RFC 8656's range only")
    }
}
