import Dns
import DnsNat
import Foundation
import IpPacket
import TestSupport
import Testing

/// dig (BIND's resolver client) asks a responder that decodes its query with our decoder and answers with our
/// encoder, the way the stub resolver answers: dig must print exactly our records.
@Suite(.serialized, .offPool) struct DigInteropTests {
    func ask(_ arguments: [String], answer: (DnsMessage) -> DnsMessage) throws -> (query: DnsMessage, output: String) {
        let socket = try UdpSocket()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/dig")
        process.arguments = ["@127.0.0.1", "-p", "\(socket.localAddress.port)", "+tries=1", "+time=5"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let (bytes, source) = try #require(socket.receive(timeoutMilliseconds: 5000), "dig sent a query")
        let query = try DnsMessage(decoding: bytes)
        socket.send(answer(query).encode(maxSize: DnsMessage.maxUdpResponseSize), to: source)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (query, text)
    }

    @Test func digReadsOurProxyIpAnswers() throws {
        let (query, output) = try ask(["app.example.com", "A"]) { query in
            var response = DnsMessage.response(to: query, rcode: .noError)
            response.answers = (1...4).map { DnsRecord(name: query.questions[0].name, ttl: 1, data: .a(IPv4Address(100, 96, 0, UInt8($0)))) }
            return response
        }
        #expect(query.questions == [DnsQuestion(name: DnsName("app.example.com")!, type: .a)])
        #expect(query.additional.contains { $0.type == .opt }, "dig sends EDNS0 (with a cookie), which we decode")
        #expect(output.contains("status: NOERROR"), "\(output)")
        #expect(output.contains("flags: qr rd ra;"), "no AD bit on a local answer: \(output)")
        for index in 1...4 {
            #expect(output.contains("app.example.com.\t1\tIN\tA\t100.96.0.\(index)"), "\(output)")
        }
        #expect(!output.contains("WARNING") && !output.contains("malformed"), "\(output)")
    }

    @Test func digReadsAaaaPtrTxtAndNxdomain() throws {
        let (_, aaaa) = try ask(["app.example.com", "AAAA"]) { query in
            var response = DnsMessage.response(to: query, rcode: .noError)
            response.answers = [DnsRecord(name: query.questions[0].name, ttl: 1, data: .aaaa(IPv6Address("fd00:2021:1111:8000::1")!))]
            return response
        }
        #expect(aaaa.contains("IN\tAAAA\tfd00:2021:1111:8000::1"), "\(aaaa)")
        let (_, ptr) = try ask(["-x", "100.96.0.1"]) { query in
            var response = DnsMessage.response(to: query, rcode: .noError)
            response.answers = [DnsRecord(name: query.questions[0].name, ttl: 1, data: .ptr(DnsName("app.example.com")!))]
            return response
        }
        #expect(ptr.contains(/1\.0\.96\.100\.in-addr\.arpa\.\s+1\s+IN\s+PTR\s+app\.example\.com\./), "\(ptr)")
        let (_, txt) = try ask(["_acme.example.com", "TXT"]) { query in
            var response = DnsMessage.response(to: query, rcode: .noError)
            response.answers = [DnsRecord(name: query.questions[0].name, ttl: 60, data: .txt([Array("v=1 hello".utf8), []]))]
            return response
        }
        #expect(txt.contains("IN\tTXT\t\"v=1 hello\" \"\""), "\(txt)")
        let (_, canary) = try ask(["use-application-dns.net", "A"]) { DnsMessage.response(to: $0, rcode: .nameError) }
        #expect(canary.contains("status: NXDOMAIN"), "\(canary)")
    }
}

extension DigInteropTests {
    /// The stub resolver itself answers dig: proxy IPs for a resource, PTR back to the name, NXDOMAIN canary.
    @Test func digReadsTheStubResolversAnswers() throws {
        var stub = StubResolver()
        stub.upsert(DnsResource(id: ResourceId("11111111-1111-1111-1111-111111111111")!, pattern: DomainPattern("**.corp.example")))
        func local(_ query: DnsMessage) -> DnsMessage {
            guard case .localResponse(let answer) = stub.handle(query) else { return DnsMessage.response(to: query, rcode: .serverFailure) }
            return answer
        }
        let (_, a) = try ask(["db.eu.corp.example", "A"], answer: local)
        #expect(a.contains("status: NOERROR"), "\(a)")
        for index in 1...4 { #expect(a.contains("db.eu.corp.example.\t1\tIN\tA\t100.96.0.\(index)"), "\(a)") }
        let (_, ptr) = try ask(["-x", "fd00:2021:1111:8000::2"], answer: local)
        #expect(ptr.contains(/IN\s+PTR\s+db\.eu\.corp\.example\./), "\(ptr)")
        let (_, canary) = try ask(["use-application-dns.net", "A"], answer: local)
        #expect(canary.contains("status: NXDOMAIN"), "\(canary)")
    }
}
