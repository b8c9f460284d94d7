import Dns
import IpPacket
import SansIO
import Testing

/// The in-memory TCP DNS server under loss, reordering, limits and bad streams. (The kernel's TCP against it:
/// `TunnelTests/KernelDnsTests`.)
@Suite struct TcpDnsServerTests {
    static let sentinel = IpAddress("100.100.111.1")!
    let start = Instant(nanoseconds: 5_000_000_000)

    /// A scripted TCP client at 100.64.0.2:`port`.
    struct Peer {
        var port: UInt16
        var sequence: UInt32 = 1_000
        var acknowledgment: UInt32 = 0

        func segment(_ flags: TcpFlags, sequence: UInt32? = nil, payload: [UInt8] = []) throws -> IpPacket {
            try IpPacket.tcp(source: IpAddress("100.64.0.2")!, destination: TcpDnsServerTests.sentinel, sourcePort: port,
                             destinationPort: 53, sequenceNumber: sequence ?? self.sequence, acknowledgmentNumber: acknowledgment,
                             flags: flags, window: 65_535, payload: payload)
        }
    }

    func drain(_ server: inout TcpDnsServer) -> [TcpHeader] {
        var headers: [TcpHeader] = []
        while let packet = server.pollPacket() { if let tcp = packet.tcp { headers.append(tcp) } }
        return headers
    }

    func payloads(_ server: inout TcpDnsServer) -> [[UInt8]] {
        var result: [[UInt8]] = []
        while let packet = server.pollPacket() {
            guard let tcp = packet.tcp, !tcp.payloadRange.isEmpty else { continue }
            result.append(Array(packet.bytes(in: tcp.payloadRange)))
        }
        return result
    }

    /// SYN, SYN-ACK, ACK.
    func connect(_ server: inout TcpDnsServer, port: UInt16 = 40_000) throws -> Peer {
        var peer = Peer(port: port)
        server.handle(try peer.segment([.syn]), now: start)
        let synAck = try #require(drain(&server).first)
        #expect(synAck.flags == [.syn, .ack] && synAck.acknowledgmentNumber == 1_001)
        peer.sequence = 1_001
        peer.acknowledgment = synAck.sequenceNumber &+ 1
        server.handle(try peer.segment([.ack]), now: start)
        return peer
    }

    func framedQuery(id: UInt16) -> [UInt8] {
        DnsTcpFraming.frame(DnsMessage(id: id, flags: DnsFlags(), questions: [DnsQuestion(name: DnsName("a.example.com")!, type: .a)]).encode())
    }

    @Test func outOfOrderDataIsAnsweredWithADuplicateAckAndTakenOnceInOrder() throws {
        var server = TcpDnsServer(random: SystemRandomNumberGenerator())
        var peer = try connect(&server)
        let frame = framedQuery(id: 7)
        let (first, second, third) = (Array(frame[0..<5]), Array(frame[5..<12]), Array(frame[12...]))
        server.handle(try peer.segment([.ack, .psh], payload: first), now: start)
        server.handle(try peer.segment([.ack, .psh], sequence: peer.sequence + 12, payload: third), now: start)
        let acks = drain(&server).map(\.acknowledgmentNumber)
        #expect(acks == [1_006, 1_006], "the segment after the gap is not taken")
        #expect(server.pollQuery() == nil)
        server.handle(try peer.segment([.ack, .psh], sequence: peer.sequence + 5, payload: second), now: start)
        server.handle(try peer.segment([.ack, .psh], sequence: peer.sequence + 12, payload: third), now: start)
        peer.sequence += UInt32(frame.count)
        #expect(server.pollQuery()?.message.id == 7)
        #expect(drain(&server).last?.acknowledgmentNumber == peer.sequence)
    }

    @Test func aLostAnswerIsSentAgainAfterTheRetransmissionTimeout() throws {
        var server = TcpDnsServer(random: SystemRandomNumberGenerator())
        var peer = try connect(&server)
        let frame = framedQuery(id: 9)
        server.handle(try peer.segment([.ack, .psh], payload: frame), now: start)
        peer.sequence += UInt32(frame.count)
        let polled = server.pollQuery()
        let query = try #require(polled)
        _ = drain(&server)
        server.respond(DnsMessage.response(to: query.message, rcode: .noError), to: query.connection, now: start)
        let lost = payloads(&server)
        #expect(lost.count == 1)
        let deadline = try #require(server.pollTimeout())
        #expect(deadline == start + .milliseconds(500))
        server.handleTimeout(now: deadline)
        #expect(payloads(&server) == lost, "go-back-N: the same bytes again")
    }

    @Test func tenConnectionsPerAddressThenReset() throws {
        var server = TcpDnsServer(random: SystemRandomNumberGenerator())
        for port in UInt16(40_000)..<40_010 { _ = try connect(&server, port: port) }
        server.handle(try Peer(port: 40_010).segment([.syn]), now: start)
        #expect(drain(&server).map(\.flags) == [[.rst, .ack]])
        #expect(server.connectionCount == 10)
    }

    @Test func aZeroLengthFrameAbortsTheConnection() throws {
        var server = TcpDnsServer(random: SystemRandomNumberGenerator())
        let peer = try connect(&server)
        server.handle(try peer.segment([.ack, .psh], payload: [0, 0, 1, 2]), now: start)
        #expect(drain(&server).contains { $0.flags.contains(.rst) })
        #expect(server.connectionCount == 0 && server.abortedCount == 1)
    }

    @Test func aSegmentWithoutAConnectionIsReset() throws {
        var server = TcpDnsServer(random: SystemRandomNumberGenerator())
        var peer = Peer(port: 40_000)
        peer.acknowledgment = 777
        server.handle(try peer.segment([.ack], payload: [1]), now: start)
        let reset = try #require(drain(&server).first)
        #expect(reset.flags == [.rst] && reset.sequenceNumber == 777)
        #expect(server.connectionCount == 0)
    }

    @Test func theCloseWaitsForPendingAnswersThenBothSidesFinish() throws {
        var server = TcpDnsServer(random: SystemRandomNumberGenerator())
        var peer = try connect(&server)
        let frame = framedQuery(id: 3)
        server.handle(try peer.segment([.ack, .psh, .fin], payload: frame), now: start)
        peer.sequence += UInt32(frame.count) + 1
        let polled = server.pollQuery()
        let query = try #require(polled)
        #expect(!drain(&server).contains { $0.flags.contains(.fin) }, "no FIN while the answer is pending")
        server.respond(DnsMessage.response(to: query.message, rcode: .noError), to: query.connection, now: start)
        let segments = drain(&server)
        let fin = try #require(segments.last)
        #expect(fin.flags.contains(.fin))
        peer.acknowledgment = fin.sequenceNumber &+ 1
        server.handle(try peer.segment([.ack]), now: start)
        #expect(server.connectionCount == 0)
    }

    @Test func anIdleConnectionIsForgottenAfterTwoMinutes() throws {
        var server = TcpDnsServer(random: SystemRandomNumberGenerator())
        _ = try connect(&server)
        #expect(server.pollTimeout() == start + .seconds(120))
        server.handleTimeout(now: start + .seconds(120))
        #expect(server.connectionCount == 0)
    }
}
