import Dns
import DnsNat
import IpPacket
import P2pControl
import TestSupport
import Testing

/// Client and Gateway exchange AssignedIps and DomainStatus as real control packets over a channel that loses,
/// duplicates and reorders them; whatever the channel does, both sides converge on the right NAT state.
@Suite(.offPool) struct ControlProtocolConvergenceTests {
    static let resource = DnsResource(id: ResourceId("66666666-6666-6666-6666-666666666666")!, pattern: DomainPattern("*.corp.example"))
    static let domain = DnsName("wiki.corp.example")!
    static let key = ClientDnsResourceNat<String>.Key(gateway: "gw", domain: domain, resource: resource.id)
    static let real = [IpAddress("10.1.2.3")!, IpAddress("2001:db8::3")!]

    /// Packets in flight: each send may be lost (30 %), duplicated (20 %), and arrives after a random delay,
    /// so later packets overtake earlier ones.
    struct LossyChannel {
        var rng: SplitMix64
        var inFlight: [(arrival: Int, packet: IpPacket)] = []

        mutating func send(_ packet: IpPacket, at step: Int) {
            let copies = Int.random(in: 0..<10, using: &rng) < 3 ? 0 : (Int.random(in: 0..<10, using: &rng) < 2 ? 2 : 1)
            for _ in 0..<copies { inFlight.append((step + Int.random(in: 1...6, using: &rng), packet)) }
        }

        mutating func deliver(at step: Int) -> [IpPacket] {
            let due = inFlight.filter { $0.arrival <= step }.map(\.packet)
            inFlight.removeAll { $0.arrival <= step }
            return due
        }
    }

    /// Runs the exchange: the application sends a packet to the domain every 500 ms of simulated time, and
    /// the Client's DNS answer triggers an update every 2 s. Returns the Client's released packets.
    func run(seed: UInt64, authorised: Bool, steps: Int = 120) throws -> (client: ClientDnsResourceNat<String>, gateway: GatewayDnsNat, released: [UInt16]) {
        var client = ClientDnsResourceNat<String>()
        var gateway = GatewayDnsNat()
        var toGateway = LossyChannel(rng: SplitMix64(seed: seed))
        var toClient = LossyChannel(rng: SplitMix64(seed: seed ^ 0x9E37_79B9))
        var released: [UInt16] = []
        let proxies = StubResolver.proxyIpsForTest()
        for step in 0..<steps {
            let now = Instant(nanoseconds: Int64(step) * 500_000_000)
            if step % 4 == 0, let assigned = try client.update(Self.key, proxyIps: proxies, now: now) {
                toGateway.send(assigned, at: step)
            }
            let appPacket = try IpPacket.udp(source: IpAddress("100.64.0.9")!, destination: proxies[0], sourcePort: UInt16(20000 + step),
                                             destinationPort: 9999, payload: [UInt8(step & 0xFF)])
            let outgoing = client.outgoing(appPacket, for: Self.key, now: now)
            if let resend = outgoing.assignedIps { toGateway.send(resend, at: step) }
            if outgoing.passThrough { released.append(UInt16(20000 + step)) }
            for packet in toGateway.deliver(at: step) {
                guard case .assignedIps(let event)? = try P2pControlEvent(packet) else { continue }
                let status: DomainStatusUpdate
                switch gateway.assignedIps(event, authorizedResource: authorised ? Self.resource : nil) {
                case .reply(let update): status = update
                case .resolve(let request): status = gateway.resolved(request, result: .success(Self.real))
                }
                toClient.send(try P2pControlEvent.domainStatus(status).packet(), at: step)
            }
            for packet in toClient.deliver(at: step) {
                guard case .domainStatus(let update)? = try P2pControlEvent(packet) else { continue }
                released += client.domainStatus(update, from: "gw").compactMap { $0.udp?.sourcePort }
            }
        }
        return (client, gateway, released)
    }

    @Test(arguments: 0..<25 as Range<UInt64>)
    func authorisedDomainConvergesOnBothSides(seed: UInt64) throws {
        let (client, gateway, released) = try run(seed: seed, authorised: true)
        #expect(client.state(of: Self.key) == .confirmed)
        let proxies = StubResolver.proxyIpsForTest()
        #expect(proxies.prefix(4).allSatisfy { gateway.translations[$0]?.realIp == Self.real[0] })
        #expect(proxies.suffix(4).allSatisfy { gateway.translations[$0]?.realIp == Self.real[1] })
        #expect(gateway.renumberCount == 0, "duplicates and reordering never look like a re-numbering")
        // Every application packet was sent exactly once, either at once or released from the buffer,
        // unless the 32-packet buffer overflowed.
        #expect(Set(released).count == released.count, "no packet released twice")
        #expect(released.count + client.droppedCount == 120)
    }

    @Test(arguments: 0..<10 as Range<UInt64>)
    func unauthorisedDomainFailsAndStopsRetrying(seed: UInt64) throws {
        var (client, gateway, _) = try run(seed: seed, authorised: false)
        #expect(client.state(of: Self.key) == .failed, "Inactive ends the retries until the domain is queried again")
        let later = Instant(nanoseconds: 1_000_000_000_000)
        #expect(try client.update(Self.key, proxyIps: StubResolver.proxyIpsForTest(), now: later) == nil, "no AssignedIps while Failed")
        #expect(gateway.translations.isEmpty)
    }
}

extension StubResolver {
    /// The first domain's proxy IPs, as a fresh stub resolver hands them out.
    static func proxyIpsForTest() -> [IpAddress] {
        var allocator = ProxyIpAllocator()
        return allocator.ips(for: DnsName("wiki.corp.example")!)
    }
}
