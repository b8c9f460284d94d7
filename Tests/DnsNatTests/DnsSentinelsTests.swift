import DnsNat
import IpPacket
import Testing

@Suite struct DnsSentinelsTests {
    func sentinels(_ sentinels: DnsSentinels) -> [String] {
        sentinels.mapping.map { "\($0.sentinel)=\($0.upstream)" }
    }

    @Test func portalDo53WinsOverDohWhichWinsOverSystem() {
        var dns = DnsSentinels()
        dns.update(portalDo53: [], portalDoh: [], system: [IpAddress("192.168.1.1")!, IpAddress("2001:db8::53")!])
        #expect(sentinels(dns) == ["100.100.111.1=192.168.1.1:53", "fd00:2021:1111:8000:100:100:111:0=[2001:db8::53]:53"])
        #expect(!dns.hasCustomUpstream)
        dns.update(portalDo53: [], portalDoh: ["https://dns.example/dns-query"], system: [IpAddress("192.168.1.1")!])
        #expect(sentinels(dns) == ["100.100.111.2=https://dns.example/dns-query"], "DoH gets IPv4 sentinels")
        #expect(dns.hasCustomUpstream)
        dns.update(portalDo53: [IpAddress("10.0.0.53")!], portalDoh: ["https://dns.example/dns-query"], system: [])
        #expect(sentinels(dns) == ["100.100.111.1=10.0.0.53:53"])
        #expect(dns.upstream(for: IpAddress("100.100.111.1")!) == .do53(IpAddress("10.0.0.53")!))
        #expect(dns.upstream(for: IpAddress("100.100.111.9")!) == nil)
    }

    @Test func sentinelsAreFilteredAndDuplicatesDropped() {
        var dns = DnsSentinels()
        let servers = ["100.100.111.1", "1.1.1.1", "1.1.1.1", "fd00:2021:1111:8000:100:100:111:7", "8.8.8.8"].map { IpAddress($0)! }
        dns.update(portalDo53: [], portalDoh: [], system: servers)
        #expect(sentinels(dns) == ["100.100.111.1=1.1.1.1:53", "100.100.111.2=8.8.8.8:53"])
    }

    @Test func changesMoveToNewSentinelsAndOnlySetChangesCount() {
        var dns = DnsSentinels()
        var seen: [String] = []
        for server in ["1.1.1.1", "8.8.8.8", "9.9.9.9"] {
            let changed = dns.update(portalDo53: [IpAddress(server)!], portalDoh: [], system: [])
            #expect(changed)
            seen.append(dns.mapping[0].sentinel.description)
        }
        #expect(seen == ["100.100.111.1", "100.100.111.2", "100.100.111.1"], "the spec's .1, .2, .1")
        let changed = dns.update(portalDo53: [IpAddress("9.9.9.9")!, IpAddress("9.9.9.9")!], portalDoh: [], system: [])
        #expect(!changed, "same set: no remapping")
    }
}
