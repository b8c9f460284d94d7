import Dns
import DnsNat
import IpPacket
import PropertyBased
import TestSupport
import Testing

@Suite(.offPool) struct GatewayDnsNatTests {
    static let client = IpAddress("100.64.0.7")!
    static let proxies = (1...4).map { IpAddress("100.96.0.\($0)")! } + (0...3).map { IpAddress("fd00:2021:1111:8000::\($0)")! }
    static let resource = DnsResource(id: ResourceId("33333333-3333-3333-3333-333333333333")!, pattern: DomainPattern("*.example.com"))
    static let domain = DnsName("app.example.com")!
    let start = Instant(nanoseconds: 1_000_000_000)

    func udp(from source: IpAddress = client, to destination: IpAddress, _ sourcePort: UInt16, _ destinationPort: UInt16) throws -> IpPacket {
        try .udp(source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort, payload: Array("hello".utf8))
    }

    func nat(resolved: [String]) throws -> GatewayDnsNat {
        var nat = GatewayDnsNat()
        try nat.setupNat(domain: Self.domain, resource: Self.resource, resolved: resolved.map { IpAddress($0)! }, proxyIps: Self.proxies)
        return nat
    }

    @Test func proxiesCycleThroughTheSortedResolvedAddresses() throws {
        let one = try nat(resolved: ["192.0.2.9"])
        #expect(Self.proxies.prefix(4).allSatisfy { one.translations[$0]?.realIp == IpAddress("192.0.2.9") })
        #expect(Self.proxies.suffix(4).allSatisfy { one.translations[$0] != nil && one.translations[$0]?.realIp == nil },
                "no IPv6 resolved: the entry exists without a real IP")
        let six = try nat(resolved: ["192.0.2.60", "192.0.2.50", "192.0.2.40", "192.0.2.30", "192.0.2.20", "192.0.2.10", "2001:db8::2", "2001:db8::1"])
        #expect(Self.proxies.prefix(4).map { six.translations[$0]?.realIp?.description } == ["192.0.2.10", "192.0.2.20", "192.0.2.30", "192.0.2.40"])
        #expect(Self.proxies.suffix(4).map { six.translations[$0]?.realIp?.description } == ["2001:db8::1", "2001:db8::2", "2001:db8::1", "2001:db8::2"])
        var nat = GatewayDnsNat()
        #expect(throws: GatewayDnsNat.SetupError.self) {
            try nat.setupNat(domain: DnsName("app.example.org")!, resource: Self.resource, resolved: [], proxyIps: Self.proxies)
        }
    }

    @Test func outboundKeepsThePortAndRepliesComeBackFromTheProxy() throws {
        var nat = try nat(resolved: ["192.0.2.9"])
        var packet = try udp(to: Self.proxies[0], 40000, 53)
        #expect(try nat.outbound(&packet, now: start) == .translated)
        #expect(packet.bytes == (try udp(to: IpAddress("192.0.2.9")!, 40000, 53)).bytes, "destination rewritten, checksums as if built so")
        var reply = try udp(from: IpAddress("192.0.2.9")!, to: Self.client, 53, 40000)
        #expect(try nat.inbound(&reply, now: start) == .translated)
        #expect(reply.bytes == (try udp(from: Self.proxies[0], to: Self.client, 53, 40000)).bytes)

        var sameSourcePortOtherProxy = try udp(to: Self.proxies[1], 40000, 53)
        #expect(try nat.outbound(&sameSourcePortOtherProxy, now: start) == .translated)
        #expect(sameSourcePortOtherProxy.udp?.sourcePort == 40001, "port taken for that real IP: the next one")
        var secondReply = try udp(from: IpAddress("192.0.2.9")!, to: Self.client, 53, 40001)
        #expect(try nat.inbound(&secondReply, now: start) == .translated)
        #expect(secondReply.source == Self.proxies[1] && secondReply.udp?.destinationPort == 40000)

        var unrelated = try udp(from: IpAddress("198.51.100.1")!, to: Self.client, 53, 40000)
        #expect(try nat.inbound(&unrelated, now: start) == .noSession)
        var cidr = try udp(to: IpAddress("10.0.0.5")!, 40000, 53)
        #expect(try nat.outbound(&cidr, now: start) == .notProxyTraffic)
        var v6 = try udp(from: IpAddress("fd00:2021:1111::7")!, to: Self.proxies[4], 40000, 53)
        #expect(try nat.outbound(&v6, now: start) == .unreachable, "no IPv6 resolved")
        var unknown = try udp(to: IpAddress("100.96.0.9")!, 40000, 53)
        #expect(try nat.outbound(&unknown, now: start) == .unreachable, "proxy IP without translation")
    }

    @Test func icmpEchoIdentifiersAreTranslatedLikePorts() throws {
        var nat = try nat(resolved: ["192.0.2.9"])
        var first = try IpPacket.icmpEchoRequest(source: Self.client, destination: Self.proxies[0], identifier: 7, sequence: 1, payload: [1, 2])
        var second = try IpPacket.icmpEchoRequest(source: Self.client, destination: Self.proxies[1], identifier: 7, sequence: 1, payload: [1, 2])
        _ = try nat.outbound(&first, now: start)
        _ = try nat.outbound(&second, now: start)
        #expect(try first.sourceKey == .icmpEcho(identifier: 7) && second.sourceKey == .icmpEcho(identifier: 8))
        var reply = try IpPacket.icmpEchoReply(source: IpAddress("192.0.2.9")!, destination: Self.client, identifier: 8, sequence: 1, payload: [1, 2])
        #expect(try nat.inbound(&reply, now: start) == .translated)
        #expect(reply.bytes == (try IpPacket.icmpEchoReply(source: Self.proxies[1], destination: Self.client, identifier: 7, sequence: 1, payload: [1, 2])).bytes)
    }

    @Test func sessionsExpireByTheSpecsRules() throws {
        var nat = try nat(resolved: ["192.0.2.9"])
        let real = IpAddress("192.0.2.9")!
        var unconfirmed = try udp(to: Self.proxies[0], 1000, 53)
        var confirmed = try udp(to: Self.proxies[0], 2000, 53)
        _ = try nat.outbound(&unconfirmed, now: start)
        _ = try nat.outbound(&confirmed, now: start)
        var reply = try udp(from: real, to: Self.client, 53, 2000)
        _ = try nat.inbound(&reply, now: start + .seconds(1))
        nat.expire(now: start + .seconds(59))
        #expect(nat.table.count == 2)
        nat.expire(now: start + .seconds(60))
        #expect(nat.table.count == 1, "never answered: gone after 60 s")
        var late = try udp(from: real, to: Self.client, 53, 1000)
        #expect(try nat.inbound(&late, now: start + .seconds(61)) == .expiredSession)
        nat.expire(now: start + .seconds(120))
        #expect(nat.table.count == 1)
        nat.expire(now: start + .seconds(121))
        #expect(nat.table.count == 0, "UDP idle 2 min after the last packet")

        var syn = try IpPacket.tcp(source: Self.client, destination: Self.proxies[0], sourcePort: 3000, destinationPort: 443, flags: .syn, payload: [UInt8]())
        _ = try nat.outbound(&syn, now: start)
        var synAck = try IpPacket.tcp(source: real, destination: Self.client, sourcePort: 443, destinationPort: 3000, flags: [.syn, .ack], payload: [UInt8]())
        _ = try nat.inbound(&synAck, now: start)
        nat.expire(now: start + .seconds(2 * 3600))
        #expect(nat.table.count == 1, "TCP idles for 2 h 4 min")
        var fin = try IpPacket.tcp(source: Self.client, destination: Self.proxies[0], sourcePort: 3000, destinationPort: 443, flags: [.fin, .ack], payload: [UInt8]())
        _ = try nat.outbound(&fin, now: start + .seconds(10))
        var finBack = try IpPacket.tcp(source: real, destination: Self.client, sourcePort: 443, destinationPort: 3000, flags: [.fin, .ack], payload: [UInt8]())
        _ = try nat.inbound(&finBack, now: start + .seconds(11))
        nat.expire(now: start + .seconds(15))
        #expect(nat.table.count == 1)
        nat.expire(now: start + .seconds(16))
        #expect(nat.table.count == 0, "FIN both ways: 5 s after the last packet")

        var rstFlow = try IpPacket.tcp(source: Self.client, destination: Self.proxies[0], sourcePort: 4000, destinationPort: 443, flags: .rst, payload: [UInt8]())
        _ = try nat.outbound(&rstFlow, now: start)
        nat.expire(now: start)
        #expect(nat.table.count == 0, "RST: at once")
    }

    @Test func reResolutionKeepsOpenFlowsAndRenumberingClearsTheRenumberedProxies() throws {
        var nat = try nat(resolved: ["192.0.2.9"])
        var open = try udp(to: Self.proxies[0], 5000, 53)
        _ = try nat.outbound(&open, now: start)
        try nat.setupNat(domain: Self.domain, resource: Self.resource, resolved: [IpAddress("192.0.2.77")!], proxyIps: Self.proxies)
        var sameFlow = try udp(to: Self.proxies[0], 5000, 53)
        _ = try nat.outbound(&sameFlow, now: start)
        #expect(sameFlow.destination == IpAddress("192.0.2.9"), "an open flow keeps its real IP")
        var newFlow = try udp(to: Self.proxies[0], 5001, 53)
        _ = try nat.outbound(&newFlow, now: start)
        #expect(newFlow.destination == IpAddress("192.0.2.77"), "a new flow uses the new one")
        #expect(nat.renumberCount == 0)

        var elsewhere = try udp(to: Self.proxies[2], 5002, 53)
        _ = try nat.outbound(&elsewhere, now: start)
        try nat.setupNat(domain: DnsName("other.example.com")!, resource: Self.resource, resolved: [IpAddress("192.0.2.5")!],
                         proxyIps: Array(Self.proxies.prefix(2)))
        #expect(nat.renumberCount == 1, "a proxy IP now names another domain: client restarted")
        #expect(nat.translations[Self.proxies[0]]?.domain == DnsName("other.example.com"))
        var reused = try udp(to: Self.proxies[0], 5000, 53)
        _ = try nat.outbound(&reused, now: start)
        #expect(reused.destination == IpAddress("192.0.2.5"), "the renumbered proxy's old session is gone with its translation")
        #expect(nat.table.count == 2, "the session to a proxy not renumbered stays, beside the new one")
        #expect(nat.translations[Self.proxies[2]]?.domain == Self.domain, "a proxy not renumbered keeps its translation")
    }

    /// Any set of flows (colliding ports included) maps one-to-one: every reply finds its own flow.
    @Test func natIsABijection() async throws {
        await propertyCheck(count: 200, input: Gen.int(in: 0...7).array(of: 1...60), Gen.int(in: 65530...65535).array(of: 60...60)) { proxies, ports in
            var nat = try! nat(resolved: ["192.0.2.9"])
            var insideByOutside: [UInt16: (proxy: IpAddress, port: UInt16)] = [:]
            for (proxyIndex, port) in zip(proxies.map { $0 % 4 }, ports) {
                var packet = try! udp(to: Self.proxies[proxyIndex], UInt16(port), 53)
                _ = try! nat.outbound(&packet, now: start)
                let outsidePort = packet.udp!.sourcePort
                if let earlier = insideByOutside[outsidePort] {
                    #expect(earlier.proxy == Self.proxies[proxyIndex] && earlier.port == UInt16(port), "outside port \(outsidePort) shared")
                }
                insideByOutside[outsidePort] = (Self.proxies[proxyIndex], UInt16(port))
            }
            for (outsidePort, inside) in insideByOutside {
                var reply = try! udp(from: IpAddress("192.0.2.9")!, to: Self.client, 53, outsidePort)
                #expect(try! nat.inbound(&reply, now: start) == .translated)
                #expect(reply.source == inside.proxy && reply.udp?.destinationPort == inside.port)
            }
        }
    }
}
