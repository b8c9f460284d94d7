import Dns
import DnsNat
import IpPacket
import PropertyBased
import TestSupport
import Testing

@Suite(.offPool) struct ProxyIpAllocatorTests {
    @Test func firstDomainGetsTheSpecsWorkedExample() {
        var allocator = ProxyIpAllocator()
        let ips = allocator.ips(for: DnsName("app.example.com")!)
        #expect(ips.map(\.description) == ["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4", "fd00:2021:1111:8000::",
                                           "fd00:2021:1111:8000::1", "fd00:2021:1111:8000::2", "fd00:2021:1111:8000::3"])
        #expect(allocator.ips(for: DnsName("APP.example.com")!) == ips, "same domain, same IPs (case-insensitive)")
        #expect(allocator.domainByIp[IpAddress("100.96.0.3")!] == DnsName("app.example.com"))
    }

    @Test func addressesNeverRepeatAndStayInRange() {
        var allocator = ProxyIpAllocator()
        var seen = Set<IpAddress>()
        for number in 0..<2_000 {
            for ip in allocator.ips(for: DnsName("d\(number).example.com")!) {
                #expect(seen.insert(ip).inserted, "\(ip) handed out twice")
                #expect(ProxyIpAllocator.isProxyIp(ip), "\(ip) inside the proxy range, outside the sentinels")
            }
        }
        #expect(seen.count == 16_000)
    }

    @Test func allocationJumpsOverTheSentinelSlash24() {
        var allocator = ProxyIpAllocator()
        let lastBeforeSentinel = ["100.100.110.252", "100.100.110.253", "100.100.110.254", "100.100.110.255"]
        allocator.importRecords([(DnsName("before.example.com")!, lastBeforeSentinel.map { IpAddress($0)! })])
        let next = allocator.ips(for: DnsName("after.example.com")!).prefix(4).map(\.description)
        #expect(next == ["100.100.112.0", "100.100.112.1", "100.100.112.2", "100.100.112.3"])
        #expect(!ProxyIpAllocator.isProxyIp(IpAddress("100.100.111.1")!))
    }

    /// Any sequence of queries, with an export/import "restart" in between, keeps every domain on its IPs and
    /// never gives one address to two domains.
    @Test func restartKeepsEveryNameOnItsIps() async {
        await propertyCheck(count: 100, input: Gen.int(in: 0...40).array(of: 1...60), Gen.int(in: 0...60)) { queries, restartAt in
            var allocator = ProxyIpAllocator()
            var first: [DnsName: [IpAddress]] = [:]
            for (index, number) in queries.enumerated() {
                if index == restartAt {
                    var restarted = ProxyIpAllocator()
                    restarted.importRecords(allocator.exported())
                    allocator = restarted
                }
                let domain = DnsName("host\(number).example.com")!
                let ips = allocator.ips(for: domain)
                if let earlier = first[domain] { #expect(earlier == ips) } else { first[domain] = ips }
            }
            let all = first.values.flatMap { $0 }
            #expect(Set(all).count == all.count, "no address belongs to two domains")
        }
    }
}
