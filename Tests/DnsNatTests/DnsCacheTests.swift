import Dns
import DnsNat
import IpPacket
import Testing

@Suite struct DnsCacheTests {
    let t0 = Instant(nanoseconds: 10_000_000_000)

    func query(_ name: String = "example.org", _ type: DnsRecordType = .a, id: UInt16 = 1) -> DnsMessage {
        DnsMessage(id: id, flags: DnsFlags(rawValue: 0x0100), questions: [DnsQuestion(name: DnsName(name)!, type: type)])
    }

    func response(to query: DnsMessage, ttls: [UInt32], rcode: DnsRcode = .noError) -> DnsMessage {
        var response = DnsMessage.response(to: query, rcode: rcode)
        response.answers = ttls.enumerated().map { index, ttl in
            DnsRecord(name: query.questions[0].name, ttl: ttl, data: .a(IPv4Address(192, 0, 2, UInt8(index + 1))))
        }
        return response
    }

    @Test func hitsCarryTheNewIdAndAgedTtls() throws {
        var cache = DnsCache()
        cache.offer(response(to: query(), ttls: [300, 60]), for: query(), now: t0)
        let hit = try #require(cache.answer(query(id: 77), now: t0 + .milliseconds(10_500)))
        #expect(hit.id == 77 && hit.flags.isResponse && hit.flags.rcode == .noError)
        #expect(hit.answers.map(\.ttl) == [290, 50], "TTLs reduced by the 10 whole seconds elapsed")
        #expect(cache.answer(query("EXAMPLE.org", id: 78), now: t0) != nil, "names compare case-insensitively")
        #expect(cache.answer(query("example.org", .aaaa), now: t0) == nil, "keyed by type too")
        #expect(cache.answer(query(), now: t0 + .seconds(60)) == nil, "expires after the smallest TTL")
        cache.removeExpired(now: t0 + .seconds(60))
        #expect(cache.count == 0)
    }

    @Test func onlyUsefulAnswersAreStored() {
        var cache = DnsCache()
        cache.offer(response(to: query("a.example"), ttls: [4]), for: query("a.example"), now: t0)
        cache.offer(response(to: query("b.example"), ttls: [1]), for: query("b.example"), now: t0)
        cache.offer(response(to: query("c.example"), ttls: [], rcode: .noError), for: query("c.example"), now: t0)
        cache.offer(response(to: query("d.example"), ttls: [60], rcode: .nameError), for: query("d.example"), now: t0)
        var truncated = response(to: query("e.example"), ttls: [60])
        truncated.flags.isTruncated = true
        cache.offer(truncated, for: query("e.example"), now: t0)
        #expect(cache.count == 0, "TTL < 5 s (local answers have 1), empty, NXDOMAIN and truncated are not cached")
        cache.offer(response(to: query("f.example"), ttls: [5]), for: query("f.example"), now: t0)
        #expect(cache.count == 1)
        cache.flush()
        #expect(cache.count == 0)
    }
}
