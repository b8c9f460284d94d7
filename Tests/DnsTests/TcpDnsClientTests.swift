import Dns
import IpPacket
import SansIO
import Testing

/// The in-tunnel TCP DNS client against the TCP DNS server: a connection per upstream, pipelined queries with
/// wire IDs unique on the connection, failures as `nil` answers.
@Suite struct TcpDnsClientTests {
    let start = Instant(nanoseconds: 5_000_000_000)
    let local = IpAddress("100.64.0.2")!
    let upstream = SocketAddress("100.64.0.1:53535")!

    /// Who asked: the query as the asker sent it, and the asker's socket.
    struct Asker: Equatable {
        var query: DnsMessage
        var socket: SocketAddress
    }

    func pending(id: UInt16, name: String, port: UInt16 = 5353) -> Asker {
        Asker(query: DnsMessage(id: id, flags: DnsFlags(), questions: [DnsQuestion(name: DnsName(name)!, type: .srv)]),
              socket: SocketAddress(ip: local, port: port))
    }

    /// Moves segments both ways until nothing moves; the server answers every query with its question's name
    /// in a TXT record. `drop` may discard server segments.
    func exchange(_ client: inout TcpDnsClient<Asker>, _ server: inout TcpDnsServer, now: Instant,
                  drop: (IpPacket) -> Bool = { _ in false }) {
        var moved = true
        while moved {
            moved = false
            while let packet = client.pollPacket() {
                moved = true
                server.handle(packet, now: now)
            }
            while let query = server.pollQuery() {
                var answer = DnsMessage.response(to: query.message, rcode: .noError)
                answer.answers = [DnsRecord(name: query.message.questions[0].name, ttl: 60, data: .txt([Array("ok".utf8)]))]
                server.respond(answer, to: query.connection, now: now)
            }
            while let packet = server.pollPacket() {
                moved = true
                if !drop(packet) { _ = client.handle(packet, now: now) }
            }
        }
    }

    func send(_ asker: Asker, with client: inout TcpDnsClient<Asker>) {
        client.send(asker.query, asker: asker, from: local, to: upstream, now: start)
    }

    func answers(_ client: inout TcpDnsClient<Asker>) -> [(Asker, DnsMessage?)] {
        var result: [(Asker, DnsMessage?)] = []
        while let answer = client.pollAnswer() { result.append(answer) }
        return result
    }

    @Test func pipelinedQueriesWithTheSameIdGetTheirOwnAnswers() throws {
        var client = TcpDnsClient<Asker>(random: SplitMix64(seed: 1))
        var server = TcpDnsServer(random: SplitMix64(seed: 2))
        let first = pending(id: 7, name: "_a._tcp.example.com"), second = pending(id: 7, name: "_b._tcp.example.com", port: 5354)
        send(first, with: &client)
        send(second, with: &client)
        exchange(&client, &server, now: start)
        let got = answers(&client)
        #expect(got.count == 2)
        for (query, answer) in got {
            #expect(answer?.questions == query.query.questions, "each asker gets the answer to its own question")
        }
        #expect(server.acceptedCount == 1, "one connection per upstream")
    }

    @Test func aLostAnswerArrivesAfterTheServersRetransmission() throws {
        var client = TcpDnsClient<Asker>(random: SplitMix64(seed: 3))
        var server = TcpDnsServer(random: SplitMix64(seed: 4))
        send(pending(id: 1, name: "_a._tcp.example.com"), with: &client)
        var dropped = false
        exchange(&client, &server, now: start) { packet in
            guard !dropped, let tcp = packet.tcp, !tcp.payloadRange.isEmpty else { return false }
            dropped = true
            return true
        }
        #expect(dropped && answers(&client).isEmpty)
        let later = start + .milliseconds(500)
        server.handleTimeout(now: later)
        exchange(&client, &server, now: later)
        #expect(answers(&client).map { $0.1?.answers.count } == [1])
    }

    @Test func aResetFailsEveryQueryOnTheConnectionAndTheNextQueryReconnects() throws {
        var client = TcpDnsClient<Asker>(random: SplitMix64(seed: 5))
        var server = TcpDnsServer(random: SplitMix64(seed: 6))
        send(pending(id: 1, name: "_a._tcp.example.com"), with: &client)
        exchange(&client, &server, now: start)
        _ = answers(&client)
        server.reset()
        send(pending(id: 2, name: "_b._tcp.example.com"), with: &client)
        // The query's segment meets a server without the connection: RST, and the query fails.
        exchange(&client, &server, now: start)
        #expect(answers(&client).map { $0.1 == nil } == [true])
        send(pending(id: 3, name: "_c._tcp.example.com"), with: &client)
        exchange(&client, &server, now: start)
        #expect(answers(&client).map { $0.1?.answers.count } == [1])
        #expect(server.acceptedCount == 2)
    }

    @Test func anUnansweredQueryFailsAfterThirtySeconds() throws {
        var client = TcpDnsClient<Asker>(random: SplitMix64(seed: 7))
        send(pending(id: 1, name: "_a._tcp.example.com"), with: &client)
        _ = client.pollPacket()
        var now = start
        while let deadline = client.pollTimeout(), deadline <= start + .seconds(30) {
            now = deadline
            client.handleTimeout(now: now)
            while client.pollPacket() != nil {}
        }
        #expect(answers(&client).map { $0.1 == nil } == [true])
        #expect(now - start <= .seconds(30))
    }
}
