import Benchmark
import DnsNat
import IpPacket

/// The DNS work of answering a query for a DNS resource: decode the query, build and encode the answer.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))

    let query = DnsMessage(id: 0x1234, flags: DnsFlags(rawValue: 0x0100),
                           questions: [DnsQuestion(name: DnsName("app.example.com")!, type: .a)]).encode()
    let proxyIps = (1...4).map { IPv4Address(100, 96, 0, UInt8($0)) }

    Benchmark("DNS: decode an A query, encode a 4-address answer") { benchmark in
        for _ in benchmark.scaledIterations {
            let decoded = try DnsMessage(decoding: query)
            var answer = DnsMessage.response(to: decoded, rcode: .noError)
            for ip in proxyIps { answer.answers.append(DnsRecord(name: decoded.questions[0].name, ttl: 1, data: .a(ip))) }
            blackHole(answer.encode(maxSize: DnsMessage.maxUdpResponseSize))
        }
    }
}
