import Dns
import DnsNat
import IpPacket
import PropertyBased
import TestSupport
import Testing

@Suite(.offPool) struct StubResolverTests {
    static let web = ResourceId("11111111-1111-1111-1111-111111111111")!
    static let wildcard = ResourceId("22222222-2222-2222-2222-222222222222")!

    func resolver(_ resources: [DnsResource]) -> StubResolver {
        var resolver = StubResolver()
        for resource in resources { resolver.upsert(resource) }
        return resolver
    }

    func query(_ name: String, _ type: DnsRecordType, id: UInt16 = 0x4242) -> DnsMessage {
        var flags = DnsFlags()
        flags.recursionDesired = true
        return DnsMessage(id: id, flags: flags, questions: [DnsQuestion(name: DnsName(name)!, type: type)])
    }

    func answers(_ strategy: StubResolver.Strategy) -> [String] {
        guard case .localResponse(let message) = strategy else { return ["not local: \(strategy)"] }
        return message.answers.map { record in
            switch record.data {
            case .a(let ip): "A \(ip)"
            case .aaaa(let ip): "AAAA \(ip)"
            case .ptr(let name): "PTR \(name)"
            default: "\(record.type)"
            }
        }
    }

    @Test func aAndAaaaGetTheDomainsProxyIpsWithTtlOne() throws {
        var stub = resolver([DnsResource(id: Self.web, pattern: DomainPattern("*.example.com"))])
        let a = stub.handle(query("App.Example.com", .a))
        #expect(answers(a) == ["A 100.96.0.1", "A 100.96.0.2", "A 100.96.0.3", "A 100.96.0.4"])
        guard case .localResponse(let message) = a else { return }
        #expect(message.id == 0x4242 && message.flags.isResponse && message.flags.rcode == .noError)
        #expect(message.questions == [DnsQuestion(name: DnsName("App.Example.com")!, type: .a)], "question echoed")
        #expect(message.answers.allSatisfy { $0.ttl == 1 && $0.name.description == "App.Example.com" }, "owned as asked")
        #expect(answers(stub.handle(query("app.example.com", .aaaa))) ==
                ["AAAA fd00:2021:1111:8000::", "AAAA fd00:2021:1111:8000::1", "AAAA fd00:2021:1111:8000::2", "AAAA fd00:2021:1111:8000::3"])
        #expect(answers(stub.handle(query("other.example.com", .a))).first == "A 100.96.0.5", "next domain, next IPs")
    }

    @Test func stackFiltersEachAnswerByTheCurrentResource() {
        var stub = resolver([DnsResource(id: Self.web, pattern: DomainPattern("app.example.com"), stack: .ipv4Only)])
        #expect(answers(stub.handle(query("app.example.com", .a))).count == 4)
        #expect(answers(stub.handle(query("app.example.com", .aaaa))) == [], "IPv4-only: NOERROR, no AAAA")
        stub.upsert(DnsResource(id: Self.web, pattern: DomainPattern("app.example.com"), stack: .ipv6Only))
        #expect(answers(stub.handle(query("app.example.com", .a))) == [], "a stack change applies at once")
        #expect(answers(stub.handle(query("app.example.com", .aaaa))).first == "AAAA fd00:2021:1111:8000::")
    }

    @Test func otherTypesFollowTheSpecTable() {
        var stub = resolver([DnsResource(id: Self.web, pattern: DomainPattern("app.example.com")),
                             DnsResource(id: Self.wildcard, pattern: DomainPattern("**.example.com"))])
        #expect(stub.handle(query("app.example.com", .srv)) == .recurseInSite(Self.web), "most specific pattern wins")
        #expect(stub.handle(query("x.y.example.com", .txt)) == .recurseInSite(Self.wildcard))
        #expect(answers(stub.handle(query("app.example.com", .https))) == [], "HTTPS: NOERROR, empty")
        #expect(stub.handle(query("app.example.com", .cname)) == .recurseLocally)
        #expect(stub.handle(query("app.example.com", DnsRecordType(rawValue: 15))) == .recurseLocally, "MX recurses")
        #expect(stub.handle(query("example.org", .a)) == .recurseLocally, "not a resource")
        guard case .localResponse(let canary) = stub.handle(query("use-application-dns.net", .a)) else {
            Issue.record("canary not answered locally")
            return
        }
        #expect(canary.flags.rcode == .nameError && canary.answers.isEmpty)
    }

    @Test func ptrForProxyIpsIsAnsweredOthersRecurse() {
        var stub = resolver([DnsResource(id: Self.web, pattern: DomainPattern("app.example.com"))])
        _ = stub.handle(query("app.example.com", .a))
        #expect(answers(stub.handle(query("3.0.96.100.in-addr.arpa", .ptr))) == ["PTR app.example.com"])
        let v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.1.1.1.1.1.2.0.2.0.0.d.f.ip6.arpa"
        #expect(answers(stub.handle(query(v6, .ptr))) == ["PTR app.example.com"])
        #expect(stub.handle(query("9.0.96.100.in-addr.arpa", .ptr)) == .recurseLocally, "not allocated")
        #expect(stub.handle(query("1.1.168.192.in-addr.arpa", .ptr)) == .recurseLocally)
        #expect(stub.handle(query("300.0.96.100.in-addr.arpa", .ptr)) == .recurseLocally, "not an address")
        #expect(stub.resolveProxyIp(IpAddress("100.96.0.2")!)?.resources.map(\.id) == [Self.web])
    }

    @Test func restoredRecordsKeepProxyIpsAcrossSessions() {
        var first = resolver([DnsResource(id: Self.web, pattern: DomainPattern("*.example.com"))])
        let before = answers(first.handle(query("b.example.com", .a)))
        var second = StubResolver(restoring: first.allocator.exported())
        second.upsert(DnsResource(id: Self.web, pattern: DomainPattern("*.example.com")))
        #expect(answers(second.handle(query("b.example.com", .a))) == before)
        #expect(answers(second.handle(query("c.example.com", .a))).first == "A 100.96.0.5", "no address reused")
    }

    /// Any sequence of A/AAAA queries, resource additions and removals, and restarts that import the exported
    /// records: a domain keeps its proxy IPs, and no proxy IP ever belongs to two domains.
    @Test func proxyIpsStayUniqueAcrossQueriesResourceChangesAndRestarts() async {
        let resources = [DnsResource(id: Self.web, pattern: DomainPattern("*.a.example")),
                         DnsResource(id: Self.wildcard, pattern: DomainPattern("**.example"))]
        await propertyCheck(count: 200, input: Gen.int(in: 0...99).array(of: 1...80)) { operations in
            var stub = StubResolver()
            var enabled: Set<Int> = [0, 1]
            for index in enabled { stub.upsert(resources[index]) }
            var owner: [String: String] = [:]
            var firstAnswer: [String: [String]] = [:]
            for operation in operations {
                switch operation {
                case 0..<5:
                    let index = operation % 2
                    if enabled.remove(index) != nil { stub.remove(resources[index].id) } else { enabled.insert(index); stub.upsert(resources[index]) }
                case 5..<10:
                    var restarted = StubResolver(restoring: stub.allocator.exported())
                    for index in enabled { restarted.upsert(resources[index]) }
                    stub = restarted
                default:
                    let name = "h\(operation % 12).\(operation % 3 == 0 ? "a." : "")example"
                    for type in [DnsRecordType.a, .aaaa] {
                        let ips = answers(stub.handle(query(name, type)))
                        guard !ips.isEmpty, !ips[0].hasPrefix("not local") else { continue }
                        let key = "\(name) \(type)"
                        if let earlier = firstAnswer[key] { #expect(earlier == ips, "\(key) kept its IPs") } else { firstAnswer[key] = ips }
                        for ip in ips {
                            if let other = owner[ip] { #expect(other == name, "\(ip) given to \(other) and \(name)") } else { owner[ip] = name }
                        }
                    }
                }
            }
        }
    }
}
