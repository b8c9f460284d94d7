import SansIO
import Stun
import Testing
import Turn
import TurnRelay

/// Our TURN client against the toolkit's relay core with the newer Firezone relay rules (spec `snownet.md` §7 and the
/// relay issue): nonces bound to the client's socket and good for a limited number of requests, one allocation
/// per username (#12319), and allocations restarted with the same credentials after a reset (#14301).
@Suite struct NewerRelayTests {
    let start = Instant(nanoseconds: 1_000_000_000)
    static let relayIp = IpAddress("192.0.2.1")!

    /// Carries datagrams between allocations and the server; `nat` is the source the server sees for each.
    final class Wire {
        let server: RelayCore
        /// Drops the next response of this method (a lost answer).
        var dropNextSuccess: StunMethod?
        var address: SocketAddress { SocketAddress(ip: NewerRelayTests.relayIp, port: 3478) }

        init(nonceUses: Int = 10_000) {
            var configuration = RelayConfiguration(publicIPv4: IPv4Address(192, 0, 2, 1), authentication: .firezone(secret: "relay-secret"))
            configuration.nonceUses = nonceUses
            server = RelayCore(configuration: configuration)
        }

        func credentials(salt: String, expiresAt: Int64) -> TurnCredentials {
            TurnCredentials(username: "\(expiresAt):\(salt)",
                            password: RelayCredentials.firezonePassword(secret: "relay-secret", expiresAt: expiresAt, salt: salt), realm: "firezone")
        }

        /// Exchanges until quiet; the server sees `source` as the allocation's address.
        func exchange(_ allocation: TurnAllocation, from source: SocketAddress, now: Instant) {
            var rounds = 0
            while let transmit = allocation.pollTransmit(), rounds < 100 {
                rounds += 1
                let outcome = transmit.payload.withUnsafeBytes {
                    server.handleFromClient($0, from: source, now: now, unixTime: 1_800_000_000)
                }
                guard case .answer(let answer) = outcome else { continue }
                if let method = dropNextSuccess, let message = try? StunMessage(decoding: answer),
                   message.method == method, message.messageClass == .successResponse {
                    dropNextSuccess = nil
                    continue
                }
                _ = allocation.handle(answer, from: address, now: now)
            }
        }
    }

    func events(_ allocation: TurnAllocation) -> [AllocationEvent] {
        var all: [AllocationEvent] = []
        while let event = allocation.pollEvent() { all.append(event) }
        return all
    }

    @Test func aNatRebindingGetsAStaleNonceThenAllocatesAgainAndTheOldAllocationIsFreed() {
        let wire = Wire()
        let credentials = wire.credentials(salt: "client-key", expiresAt: 1_900_000_000)
        let allocation = TurnAllocation(server: RelayServer(ipv4: wire.address), credentials: credentials, now: start)
        let before = SocketAddress("198.51.100.7:40000")!
        wire.exchange(allocation, from: before, now: start)
        #expect(allocation.isAllocated)
        _ = events(allocation)

        // The NAT in front of the client maps it to a new port: the nonce belongs to the old one (438), and the
        // relay knows no allocation for the new 3-tuple (437), so the client allocates again, with the same
        // username, which frees the allocation the old port held.
        let after = SocketAddress("198.51.100.7:40001")!
        allocation.refresh(now: start + .seconds(10))
        wire.exchange(allocation, from: after, now: start + .seconds(10))
        #expect(allocation.isAllocated)
        #expect(wire.server.allocatedClients == [after], "one allocation, the new socket's")
        #expect(wire.server.statistics.allocationsFreedByUsername == 1)
        #expect(events(allocation).contains { if case .relayCandidate = $0 { true } else { false } }, "a new relay candidate")
    }

    @Test func aNonceUsedUpIsStaleAndTheClientCarriesOn() throws {
        let wire = Wire(nonceUses: 2)
        let credentials = wire.credentials(salt: "client-key", expiresAt: 1_900_000_000)
        let allocation = TurnAllocation(server: RelayServer(ipv4: wire.address), credentials: credentials, now: start)
        let client = SocketAddress("198.51.100.7:40000")!
        wire.exchange(allocation, from: client, now: start)
        for (index, peer) in ["203.0.113.1:1000", "203.0.113.2:2000", "203.0.113.3:3000"].enumerated() {
            allocation.bindChannel(to: try #require(SocketAddress(peer)), now: start + .seconds(index))
            wire.exchange(allocation, from: client, now: start + .seconds(index))
        }
        allocation.refresh(now: start + .seconds(5))
        wire.exchange(allocation, from: client, now: start + .seconds(5))
        #expect(allocation.isAllocated && allocation.failureReason == nil)
        #expect(events(allocation).filter { if case .channelBound = $0 { true } else { false } }.count == 3,
                "every channel bound although each nonce signed only two requests")
    }

    @Test func aLostAllocateAnswerStillLeavesOneAllocation() {
        let wire = Wire()
        wire.dropNextSuccess = .allocate
        let credentials = wire.credentials(salt: "client-key", expiresAt: 1_900_000_000)
        let allocation = TurnAllocation(server: RelayServer(ipv4: wire.address), credentials: credentials, now: start)
        let client = SocketAddress("198.51.100.7:40000")!
        wire.exchange(allocation, from: client, now: start)
        #expect(!allocation.isAllocated, "the answer was lost")
        // The retransmission finds the allocation its first copy made (437): the client deletes it and allocates.
        var now = start
        while !allocation.isAllocated, now < start + .seconds(10) {
            now = allocation.pollTimeout() ?? now + .milliseconds(100)
            allocation.handleTimeout(now: now)
            wire.exchange(allocation, from: client, now: now)
        }
        #expect(allocation.isAllocated)
        #expect(wire.server.allocatedClients.count == 1)
    }

    @Test func restartingFromANewSocketKeepsTheCredentialsAndLeavesOneAllocation() {
        let wire = Wire()
        let credentials = wire.credentials(salt: "client-key", expiresAt: 1_900_000_000)
        let allocations = Allocations()
        allocations.upsert(id: "relay", server: RelayServer(ipv4: wire.address), credentials: credentials, now: start)
        let old = SocketAddress("198.51.100.7:40000")!
        wire.exchange(allocations.entries[0].allocation, from: old, now: start)
        #expect(allocations.entries[0].allocation.isAllocated)

        allocations.restartAll(now: start + .seconds(1)) { SystemRandomNumberGenerator() }
        let restarted = allocations.entries[0].allocation
        #expect(restarted.credentials == credentials && !restarted.isAllocated)
        let new = SocketAddress("198.51.100.7:50000")!
        wire.exchange(restarted, from: new, now: start + .seconds(1))
        #expect(restarted.isAllocated)
        #expect(wire.server.allocatedClients == [new] && wire.server.statistics.allocationsFreedByUsername == 1)
    }

    @Test func expiredOrForeignCredentialsAreRefused() {
        let wire = Wire()
        let expired = wire.credentials(salt: "client-key", expiresAt: 1_000)
        let allocation = TurnAllocation(server: RelayServer(ipv4: wire.address), credentials: expired, now: start)
        wire.exchange(allocation, from: SocketAddress("198.51.100.7:40000")!, now: start)
        #expect(!allocation.isAllocated && wire.server.allocatedClients.isEmpty)
        let foreign = TurnCredentials(username: "1900000000:client-key", password: "guessed", realm: "firezone")
        let guessing = TurnAllocation(server: RelayServer(ipv4: wire.address), credentials: foreign, now: start)
        wire.exchange(guessing, from: SocketAddress("198.51.100.8:40000")!, now: start)
        #expect(!guessing.isAllocated && wire.server.allocatedClients.isEmpty)
    }

    @Test func aDatagramFromPortZeroIsDropped() {
        let wire = Wire()
        let binding = StunMessage(class: .request, method: .binding, transactionId: TransactionId(Array(repeating: 7, count: 12))!)
        let bytes = binding.encode(integrity: nil)
        let outcome = bytes.withUnsafeBytes {
            wire.server.handleFromClient($0, from: SocketAddress("198.51.100.7:0")!, now: start, unixTime: 1_800_000_000)
        }
        #expect(outcome == .drop && wire.server.statistics.fromPortZero == 1)
    }

    /// Found by the TunnelProto harness once the simulations ran on the relay core, whose channels expire: a channel
    /// that carried no data for 600 s expired on both sides, and the client never bound its peer again (the peer
    /// still mapped to the old number). It binds the same number again, which the relay takes as a refresh even in
    /// the cool-down, and data flows.
    @Test func aChannelThatExpiredWithoutDataIsBoundAgainWithTheSameNumber() throws {
        let wire = Wire()
        let allocation = TurnAllocation(server: RelayServer(ipv4: wire.address), credentials: wire.credentials(salt: "client-key", expiresAt: 1_900_000_000),
                                        now: start)
        let client = SocketAddress("198.51.100.7:40000")!, peer = SocketAddress("203.0.113.9:5000")!
        wire.exchange(allocation, from: client, now: start)
        allocation.bindChannel(to: peer, now: start)
        wire.exchange(allocation, from: client, now: start)
        let number = try #require(allocation.channel(for: peer, now: start))

        var now = start
        while now < start + .seconds(700) {  // refreshes keep the allocation; the channel sees no data
            now = now + .seconds(20)
            allocation.handleTimeout(now: now)
            wire.exchange(allocation, from: client, now: now)
            wire.server.handleTimeout(now: now)
        }
        #expect(allocation.channel(for: peer, now: now) == nil, "expired on the client")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        #expect(allocation.encodeChannelData(to: peer, payloadLength: 4, into: buffer, now: now) == nil, "asks for a bind first")
        wire.exchange(allocation, from: client, now: now)
        #expect(allocation.channel(for: peer, now: now) == number, "bound again, with the same number")
        #expect(wire.server.channelCount == 1)
    }
}
