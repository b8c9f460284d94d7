import Dns
import DnsNat
import Foundation
import IpPacket
import TestSupport
import Testing

/// The Client's DNS front door, asked by dig: dig's query bytes arrive as a UDP packet to a sentinel, and the
/// payload of the packet we answer with goes back to dig.
@Suite(.serialized, .offPool) struct ClientDnsTests {
    static let sentinel = IpAddress("100.100.111.1")!
    static let osResolver = IpAddress("100.64.0.9")!
    static let upstream = IpAddress("192.168.1.1")!

    func frontDoor() -> ClientDns {
        var dns = ClientDns()
        dns.sentinels.update(portalDo53: [], portalDoh: [], system: [Self.upstream])
        dns.stub.upsert(DnsResource(id: ResourceId("77777777-7777-7777-7777-777777777777")!, pattern: DomainPattern("**.corp.example")))
        return dns
    }

    /// Runs dig against a socket; `handle` turns the query packet into the answer packet (or nil for no answer).
    func dig(_ arguments: [String], handle: (IpPacket) throws -> IpPacket?) throws -> String {
        let socket = try UdpSocket()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/dig")
        process.arguments = ["@127.0.0.1", "-p", "\(socket.localAddress.port)", "+tries=1", "+time=2", "+ignore"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let (bytes, source) = try #require(socket.receive(timeoutMilliseconds: 5000), "dig sent a query")
        let packet = try IpPacket.udp(source: Self.osResolver, destination: Self.sentinel, sourcePort: source.port, destinationPort: 53, payload: bytes)
        if let answer = try handle(packet) {
            #expect(answer.source == Self.sentinel && answer.destination == Self.osResolver && answer.udp?.sourcePort == 53)
            #expect(answer.udp?.destinationPort == source.port)
            socket.send(answer.bytes(in: answer.udp!.payloadRange), to: source)
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test func digGetsProxyIpsForAResourceFromTheFrontDoor() throws {
        var dns = frontDoor()
        let output = try dig(["git.corp.example", "AAAA"]) { packet in
            guard case .reply(let answer, let domain) = dns.handleQueryPacket(packet, now: Instant(nanoseconds: 0)) else { return nil }
            #expect(domain == DnsName("git.corp.example"), "the caller learns which domain to refresh NAT for")
            return answer
        }
        #expect(output.contains("status: NOERROR"), "\(output)")
        #expect(output.contains("git.corp.example.\t1\tIN\tAAAA\tfd00:2021:1111:8000::3"), "\(output)")
    }

    @Test func forwardedQueriesGetTheUpstreamAnswerWithTheOriginalIdTruncatedTo1212() throws {
        var dns = frontDoor()
        let output = try dig(["big.example.org", "TXT"]) { packet in
            guard case .recurseLocally(let pending, let upstream) = dns.handleQueryPacket(packet, now: Instant(nanoseconds: 0)) else { return nil }
            #expect(upstream == .do53(Self.upstream))
            var upstreamQuery = pending.query
            upstreamQuery.id = 0xBEEF
            var response = DnsMessage.response(to: upstreamQuery, rcode: .noError)
            response.answers = (0..<20).map { _ in DnsRecord(name: upstreamQuery.questions[0].name, ttl: 300, data: .txt([Array(repeating: 0x78, count: 100)])) }
            return try dns.answer(pending, response: response, now: Instant(nanoseconds: 0))
        }
        #expect(output.contains("status: NOERROR"), "\(output)")
        #expect(output.contains("flags: qr tc rd ra"), "over 1212 bytes: truncated: \(output)")
        #expect(output.contains("ANSWER: 0"), "\(output)")
    }

    @Test func failedRecursionIsServfailAndBadQueriesAreRejected() throws {
        var dns = frontDoor()
        let output = try dig(["unreachable.example.org", "A"]) { packet in
            guard case .recurseLocally(let pending, _) = dns.handleQueryPacket(packet, now: Instant(nanoseconds: 0)) else { return nil }
            return try dns.answer(pending, response: nil, now: Instant(nanoseconds: 0))
        }
        #expect(output.contains("status: SERVFAIL"), "\(output)")

        let notDns = try IpPacket.udp(source: Self.osResolver, destination: Self.sentinel, sourcePort: 5000, destinationPort: 54, payload: [1, 2])
        guard case .rejected(.notUdpToPort53) = dns.handleQueryPacket(notDns, now: Instant(nanoseconds: 0)) else {
            Issue.record("UDP to port 54 accepted")
            return
        }
        let garbage = try IpPacket.udp(source: Self.osResolver, destination: Self.sentinel, sourcePort: 5000, destinationPort: 53, payload: [1, 2, 3])
        guard case .rejected(.undecodable) = dns.handleQueryPacket(garbage, now: Instant(nanoseconds: 0)) else {
            Issue.record("garbage accepted")
            return
        }
        #expect(dns.rejectedCount == 2)
        let unmapped = try IpPacket.udp(source: Self.osResolver, destination: IpAddress("100.100.111.9")!, sourcePort: 5000, destinationPort: 53, payload: [1])
        guard case .notDns = dns.handleQueryPacket(unmapped, now: Instant(nanoseconds: 0)) else {
            Issue.record("an unmapped sentinel handled as DNS")
            return
        }
    }

    @Test func cachedUpstreamAnswersAreServedWithoutForwarding() throws {
        var dns = frontDoor()
        let query = DnsMessage(id: 5, flags: DnsFlags(rawValue: 0x0100), questions: [DnsQuestion(name: DnsName("example.org")!, type: .a)])
        let packet = try IpPacket.udp(source: Self.osResolver, destination: Self.sentinel, sourcePort: 5353, destinationPort: 53, payload: query.encode())
        guard case .recurseLocally(let pending, _) = dns.handleQueryPacket(packet, now: Instant(nanoseconds: 0)) else {
            Issue.record("not forwarded")
            return
        }
        var response = DnsMessage.response(to: query, rcode: .noError)
        response.answers = [DnsRecord(name: DnsName("example.org")!, ttl: 60, data: .a(IPv4Address(192, 0, 2, 1)))]
        _ = try dns.answer(pending, response: response, now: Instant(nanoseconds: 0))
        guard case .reply(let cached, nil) = dns.handleQueryPacket(packet, now: Instant(nanoseconds: 3_000_000_000)) else {
            Issue.record("second query not served from the cache")
            return
        }
        let message = try DnsMessage(decoding: cached.bytes(in: cached.udp!.payloadRange))
        #expect(message.id == 5 && message.answers.first?.ttl == 57)
    }
}
