import Dns
import DnsNat
import IpPacket
import P2pControl
import Testing

@Suite struct ClientDnsResourceNatTests {
    typealias Nat = ClientDnsResourceNat<String>
    static let resource = ResourceId("44444444-4444-4444-4444-444444444444")!
    static let key = Nat.Key(gateway: "gw-1", domain: DnsName("app.example.com")!, resource: resource)
    static let proxies = (1...4).map { IpAddress("100.96.0.\($0)")! }
    let t0 = Instant(nanoseconds: 5_000_000_000)

    func packet(_ port: UInt16, flags: TcpFlags = .ack, sequence: UInt32 = 1) throws -> IpPacket {
        try .tcp(source: IpAddress("100.64.0.7")!, destination: Self.proxies[0], sourcePort: port, destinationPort: 443,
                 sequenceNumber: sequence, flags: flags, payload: [UInt8]())
    }

    func status(_ status: DomainStatus) -> DomainStatusUpdate {
        DomainStatusUpdate(resource: Self.resource, domain: Self.key.domain, status: status)
    }

    @Test func firstUpdateSendsAssignedIpsAndBuffersUntilActive() throws {
        var nat = Nat()
        let assigned = try #require(try nat.update(Self.key, proxyIps: Self.proxies, packets: [try packet(1000)], now: t0))
        guard case .assignedIps(let event)? = try P2pControlEvent(assigned) else {
            Issue.record("not an AssignedIps control packet")
            return
        }
        #expect(event.proxyIps == Self.proxies && event.domain == Self.key.domain && event.resource == Self.resource)
        let early = nat.outgoing(try packet(1001), for: Self.key, now: t0 + .milliseconds(1999))
        #expect(!early.passThrough && early.assignedIps == nil, "buffered; no resend before 2 s")
        let late = nat.outgoing(try packet(1002), for: Self.key, now: t0 + .seconds(2))
        #expect(!late.passThrough && late.assignedIps != nil, "a packet 2 s later triggers the resend")
        #expect(try nat.update(Self.key, proxyIps: Self.proxies, now: t0 + .seconds(3)) == nil, "resend timer restarted")
        let released = nat.domainStatus(status(.active), from: "gw-1")
        #expect(released.compactMap { $0.tcp?.sourcePort } == [1000, 1001, 1002], "in order")
        #expect(nat.state(of: Self.key) == .confirmed)
        #expect(nat.outgoing(try packet(1003), for: Self.key, now: t0 + .seconds(4)).passThrough)
    }

    @Test func refreshNeverInterruptsAConfirmedFlow() throws {
        var nat = Nat()
        _ = try nat.update(Self.key, proxyIps: Self.proxies, now: t0)
        _ = nat.domainStatus(status(.active), from: "gw-1")
        nat.recreate(domain: DnsName("APP.example.com")!)
        #expect(nat.state(of: Self.key) == .recreating(shouldBuffer: false))
        #expect(try nat.update(Self.key, proxyIps: Self.proxies, now: t0 + .seconds(10)) != nil, "refresh re-sends at once")
        #expect(nat.outgoing(try packet(2000), for: Self.key, now: t0 + .seconds(10)).passThrough, "traffic keeps flowing")
    }

    @Test func inactiveDiscardsAndTheNextAnswerRetriesWithBuffering() throws {
        var nat = Nat()
        _ = try nat.update(Self.key, proxyIps: Self.proxies, packets: [try packet(1)], now: t0)
        #expect(nat.domainStatus(status(.inactive), from: "gw-1").isEmpty)
        #expect(nat.state(of: Self.key) == .failed)
        #expect(nat.outgoing(try packet(2), for: Self.key, now: t0).passThrough, "failed passes through")
        #expect(try nat.update(Self.key, proxyIps: Self.proxies, now: t0 + .seconds(30)) == nil, "no retry without a DNS answer")
        nat.recreate(domain: Self.key.domain)
        #expect(try nat.update(Self.key, proxyIps: Self.proxies, now: t0 + .seconds(31)) != nil)
        #expect(!nat.outgoing(try packet(3), for: Self.key, now: t0 + .seconds(31)).passThrough, "buffers again")
        #expect(nat.domainStatus(status(.active), from: "gw-2").isEmpty, "a status from another gateway is ignored")
        #expect(nat.domainStatus(status(.active), from: "gw-1").compactMap { $0.tcp?.sourcePort } == [3])
    }

    @Test func bufferIsAUniqueRingOf32() throws {
        var nat = Nat()
        _ = try nat.update(Self.key, proxyIps: Self.proxies, now: t0)
        for port in 0..<40 { _ = nat.outgoing(try packet(UInt16(port)), for: Self.key, now: t0) }
        _ = nat.outgoing(try packet(39), for: Self.key, now: t0)
        _ = nat.outgoing(try packet(50, flags: .syn, sequence: 7), for: Self.key, now: t0)
        var retransmittedSyn = try packet(50, flags: .syn, sequence: 7)
        retransmittedSyn.setTtl(63)
        _ = nat.outgoing(retransmittedSyn, for: Self.key, now: t0)
        #expect(nat.droppedCount == 9, "40 + 1 SYN into 32: the 9 oldest overwritten; duplicate and retransmitted SYN add nothing")
        let released = nat.domainStatus(status(.active), from: "gw-1")
        #expect(released.count == 32)
        #expect(released.first?.tcp?.sourcePort == 9 && released.last?.ttl == 63, "the retransmitted SYN replaced the first")
    }

    @Test func cleanupRemovesEntries() throws {
        var nat = Nat()
        _ = try nat.update(Self.key, proxyIps: Self.proxies, now: t0)
        nat.removeGateway("gw-1")
        #expect(nat.state(of: Self.key) == nil)
        _ = try nat.update(Self.key, proxyIps: Self.proxies, now: t0)
        nat.removeResource(Self.resource)
        #expect(nat.state(of: Self.key) == nil)
        #expect(nat.domainStatus(status(.active), from: "gw-1").isEmpty, "unknown key: ignored")
        #expect(nat.state(of: Self.key) == nil)
    }

    @Test func remainingTransitionRows() throws {
        var nat = Nat()
        nat.recreate(domain: Self.key.domain)
        #expect(nat.state(of: Self.key) == nil, "recreate without an entry creates nothing")
        _ = try nat.update(Self.key, proxyIps: Self.proxies, now: t0)
        nat.recreate(domain: Self.key.domain)
        #expect(nat.state(of: Self.key) == .pending(sentAt: t0, shouldBuffer: true), "recreate leaves Pending alone")
        _ = nat.domainStatus(status(.active), from: "gw-1")
        #expect(try nat.update(Self.key, proxyIps: Self.proxies, packets: [try packet(1)], now: t0 + .seconds(9)) == nil,
                "Confirmed: update changes nothing")
        #expect(nat.state(of: Self.key) == .confirmed)
        nat.recreate(domain: Self.key.domain)
        nat.recreate(domain: Self.key.domain)
        #expect(nat.state(of: Self.key) == .recreating(shouldBuffer: false), "recreate leaves Recreating alone")
        #expect(nat.outgoing(try packet(2), for: Self.key, now: t0 + .seconds(9)).passThrough, "Recreating passes through")
        _ = nat.domainStatus(status(.inactive), from: "gw-1")
        #expect(nat.state(of: Self.key) == .failed, "a late Inactive demotes any state")
        _ = nat.domainStatus(status(.active), from: "gw-1")
        #expect(nat.state(of: Self.key) == .confirmed, "Active promotes any state")
        let other = Nat.Key(gateway: "gw-2", domain: Self.key.domain, resource: Self.resource)
        _ = try nat.update(other, proxyIps: Self.proxies, now: t0)
        nat.recreate(domain: Self.key.domain)
        #expect(nat.state(of: Self.key) == .recreating(shouldBuffer: false) && nat.state(of: other) == .pending(sentAt: t0, shouldBuffer: true),
                "recreate reaches every Gateway's entry of the domain")
        nat.reset()
        #expect(nat.state(of: Self.key) == nil && nat.state(of: other) == nil)
    }
}
