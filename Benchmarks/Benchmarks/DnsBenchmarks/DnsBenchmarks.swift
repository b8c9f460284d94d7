import Benchmark
import Dns
import DnsNat
import IpPacket

/// The DNS work of answering a query for a DNS resource, and the Gateway's per-packet DNS-resource NAT.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))

    let query = DnsMessage(id: 0x1234, flags: DnsFlags(rawValue: 0x0100),
                           questions: [DnsQuestion(name: DnsName("app.example.com")!, type: .a)]).encode()
    let proxyIps = (1...4).map { IPv4Address(100, 96, 0, UInt8($0)) }
    let resourceId = ResourceId("00000000-0000-0000-0000-000000000065")!

    Benchmark("DNS: decode an A query, encode a 4-address answer") { benchmark in
        for _ in benchmark.scaledIterations {
            let decoded = try DnsMessage(decoding: query)
            var answer = DnsMessage.response(to: decoded, rcode: .noError)
            for ip in proxyIps { answer.answers.append(DnsRecord(name: decoded.questions[0].name, ttl: 1, data: .a(ip))) }
            blackHole(answer.encode(maxSize: DnsMessage.maxUdpResponseSize))
        }
    }

    Benchmark("DNS: stub resolver answers an A query for a DNS resource (decode, match, answer, encode)") { benchmark in
        var stub = StubResolver()
        stub.upsert(DnsResource(id: resourceId, pattern: DomainPattern("*.example.com")))
        for _ in benchmark.scaledIterations {
            let decoded = try DnsMessage(decoding: query)
            guard case .localResponse(let answer) = stub.handle(decoded) else { fatalError("not answered locally") }
            blackHole(answer.encode(maxSize: DnsMessage.maxUdpResponseSize))
        }
    }

    // Steady state of an open flow: each iteration translates one packet each way on a live session, then
    // restores the packet's address with one plain mutator so the next iteration sees the same input.
    let client = IpAddress("100.64.0.7")!, proxy = IpAddress("100.96.0.1")!, real = IpAddress("192.0.2.9")!
    Benchmark("NAT: gateway translates a TCP packet out and its reply back (1280 B, live session)") { benchmark in
        var nat = GatewayDnsNat()
        try nat.setupNat(domain: DnsName("app.example.com")!, resource: DnsResource(id: resourceId, pattern: DomainPattern("*.example.com")),
                         resolved: [real], proxyIps: proxyIps.map(IpAddress.v4))
        let payload = [UInt8](repeating: 0x61, count: 1240)
        var outbound = try IpPacket.tcp(source: client, destination: proxy, sourcePort: 40000, destinationPort: 443, flags: .ack, payload: payload)
        var inbound = try IpPacket.tcp(source: real, destination: client, sourcePort: 443, destinationPort: 40000, flags: .ack, payload: payload)
        let now = Instant(nanoseconds: 1)
        _ = try nat.outbound(&outbound, now: now)
        try outbound.setDestination(proxy)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try nat.outbound(&outbound, now: now))
            try outbound.setDestination(proxy)
            blackHole(try nat.inbound(&inbound, now: now))
            try inbound.setSource(real)
        }
    }
}
