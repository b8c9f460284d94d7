import Dns
import Foundation
import IpPacket
import P2pControl
import PortalMessages
import SansIO
import Testing
@testable import Tunnel
@testable import TunnelSimulation

@Suite("GatewayState: authorisation, filters and ICMP answers in the simulation")
struct GatewayStateTests {
    static let resourceId = ResourceId("aaaaaaaa-0000-4000-8000-000000000001")!
    static let cidr = GatewayResource.cidr(id: resourceId, address: IpNetwork("10.0.0.0/24")!, name: "lan",
                                           filters: [.udp(53...53), .icmp])
    let host = IpAddress("10.0.0.5")!

    func world() throws -> GatewayWorld {
        let world = try GatewayWorld()
        world.gateway.kernel = ResourceHost.echo
        try world.authorize(Self.cidr)
        return world
    }

    @Test("authorize_flow answers flow_authorized; a permitted ping reaches the resource and the reply comes back")
    func permittedTraffic() throws {
        let world = try world()
        #expect(world.portalReplies.contains(.flowAuthorized(ref: "ref-1")))
        try world.send(IpPacket.icmpEchoRequest(source: .v4(world.clientIpv4), destination: host, identifier: 7, sequence: 1, payload: [1, 2]))
        #expect(world.gateway.toTun.map(\.destination) == [host])
        let replies = world.clientReceived()
        #expect(replies.count == 1)
        #expect(replies.first?.source == host)
        #expect(replies.first?.icmp?.type == 0, "an echo reply")
    }

    @Test("a filtered port is answered with ICMP administratively prohibited and never reaches the TUN device")
    func filteredPort() throws {
        let world = try world()
        let syn = try IpPacket.tcp(source: .v4(world.clientIpv4), destination: host, sourcePort: 40000, destinationPort: 22,
                                   flags: [.syn], payload: [UInt8]())
        try world.send(syn)
        #expect(world.gateway.toTun.isEmpty)
        let answer = try #require(world.clientReceived().first)
        #expect(answer.icmp?.type == 3 && answer.icmp?.code == 13)
        #expect(answer.source == host && answer.destination == .v4(world.clientIpv4))
        let quoted = try #require(try answer.icmpError())
        #expect(quoted.failedPacket.destinationKey == .tcp(22))
        #expect(world.gateway.state.statistics.drops[.prohibited] == 1)
    }

    @Test("destinations outside every resource, and spoofed sources, are prohibited")
    func notAResource() throws {
        let world = try world()
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: IpAddress("192.168.1.1")!, sourcePort: 1000,
                                    destinationPort: 53, payload: [0]))
        try world.send(IpPacket.udp(source: IpAddress("100.64.0.9")!, destination: host, sourcePort: 1000, destinationPort: 53,
                                    payload: [0]))
        #expect(world.gateway.toTun.isEmpty)
        #expect(world.gateway.state.statistics.drops[.prohibited] == 2)
        #expect(world.clientReceived().allSatisfy { $0.icmp?.type == 3 && $0.icmp?.code == 13 })
    }

    @Test("the reply path applies the filters by source port (seed 001)")
    func replyPathFilter() throws {
        let world = try world()
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: host, sourcePort: 5000, destinationPort: 53,
                                    payload: [1]))
        #expect(world.clientReceived().count == 1)
        var unsolicited = try IpPacket.udp(source: host, destination: .v4(world.clientIpv4), sourcePort: 8080, destinationPort: 5000,
                                           payload: [2])
        world.gateway.fromTun(&unsolicited, in: world.simulation)
        world.simulation.run(for: .milliseconds(50))
        #expect(world.clientReceived().count == 1)
        #expect(world.gateway.state.statistics.drops[.notAllowed] == 1)
    }

    @Test("resource_updated replaces the filters: a port that was refused now passes")
    func resourceUpdated() throws {
        let world = try world()
        let tcp = { try IpPacket.tcp(source: .v4(world.clientIpv4), destination: self.host, sourcePort: 40000, destinationPort: 22,
                                     flags: [.syn], payload: [UInt8]()) }
        try world.send(tcp())
        #expect(world.gateway.toTun.isEmpty)
        try world.gateway.deliver(.resourceUpdated(.cidr(id: Self.resourceId, address: IpNetwork("10.0.0.0/24")!, name: "lan",
                                                         filters: [.tcp(22...22)])), in: world.simulation)
        try world.send(tcp())
        #expect(world.gateway.toTun.count == 1)
    }

    @Test("reject_access of the last resource forgets the client and sends it a Goodbye")
    func rejectAccess() throws {
        let world = try world()
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: host, sourcePort: 5000, destinationPort: 53, payload: [1]))
        try world.gateway.deliver(.rejectAccess(AccessKey(clientId: world.clientId, resourceId: Self.resourceId)), in: world.simulation)
        world.simulation.run(for: .milliseconds(50))
        #expect(world.gateway.state.clientIds.isEmpty)
        #expect(world.client.node.connectionCount == 0, "the client dropped the connection on the Goodbye")
        #expect(world.clientReceived().last.map { (try? P2pControlEvent($0)) == .goodbye } == true)
    }

    @Test("an authorisation expires on the 1 s tick; re-authorising keeps the old expiry")
    func expiry() throws {
        let world = try GatewayWorld()
        world.gateway.kernel = ResourceHost.echo
        try world.authorize(Self.cidr, expiresAt: world.unixNow + 5)
        try world.authorize(Self.cidr, ref: "ref-2", expiresAt: world.unixNow + 3600)
        #expect(world.gateway.state.resources(of: world.clientId) == [Self.resourceId])
        world.simulation.run(for: .seconds(7))
        #expect(world.gateway.state.clientIds.isEmpty)
        #expect(world.client.node.connectionCount == 0)
    }

    @Test("a DNS resource: AssignedIps is resolved by the app, NAT maps the proxy IP to the real one and back")
    func dnsResourceNat() throws {
        let world = try GatewayWorld()
        world.gateway.kernel = ResourceHost.echo
        let dnsId = ResourceId("bbbbbbbb-0000-4000-8000-000000000002")!
        try world.authorize(.dns(id: dnsId, address: "*.example.com", name: "web", filters: []))
        let proxies = (1...4).map { IpAddress("100.96.0.\($0)")! }
        let assigned = try P2pControlEvent.assignedIps(AssignedIps(resource: dnsId,
                                                                    domain: DnsName("app.example.com")!, proxyIps: proxies)).packet()
        try world.send(assigned)
        guard case .resolve(let request)? = world.gateway.events.last(where: { if case .resolve = $0 { true } else { false } }) else {
            Issue.record("no resolve request; events: \(world.gateway.events)")
            return
        }
        world.gateway.state.resolved(request, result: .success([IpAddress("203.0.113.80")!]), now: world.simulation.now)
        world.gateway.flush(in: world.simulation)
        world.simulation.run(for: .milliseconds(50))
        let status = world.clientReceived().compactMap { try? P2pControlEvent($0) }.last
        guard case .domainStatus(let update)? = status else {
            Issue.record("expected a DomainStatus, got \(String(describing: status))")
            return
        }
        #expect(update.status == .active)

        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: proxies[0], sourcePort: 6000, destinationPort: 443,
                                    payload: [9]))
        #expect(world.gateway.toTun.last?.destination == IpAddress("203.0.113.80")!)
        let reply = try #require(world.clientReceived().last)
        #expect(reply.source == proxies[0])
        #expect(reply.udp?.destinationPort == 6000)
    }

    @Test("a proxy IP: without a translation it is prohibited; resolved to nothing it is unreachable (spec §5.6.3)")
    func proxyWithoutRealIp() throws {
        let world = try GatewayWorld()
        let dnsId = ResourceId("bbbbbbbb-0000-4000-8000-000000000002")!
        try world.authorize(.dns(id: dnsId, address: "*.example.com", name: "web", filters: []))
        let proxy = IpAddress("100.96.0.1")!
        let packet = { try IpPacket.udp(source: .v4(world.clientIpv4), destination: proxy, sourcePort: 6000, destinationPort: 443,
                                        payload: [9]) }
        try world.send(packet())
        #expect(world.clientReceived().last?.icmp.map { ($0.type, $0.code) } ?? (0, 0) == (3, 13))

        let assigned = try P2pControlEvent.assignedIps(AssignedIps(
            resource: dnsId, domain: DnsName("gone.example.com")!,
            proxyIps: (1...4).map { IpAddress("100.96.0.\($0)")! })).packet()
        try world.send(assigned)
        guard case .resolve(let request)? = world.gateway.events.last else {
            Issue.record("no resolve request")
            return
        }
        world.gateway.state.resolved(request, result: .success([]), now: world.simulation.now)
        world.gateway.flush(in: world.simulation)
        try world.send(packet())
        #expect(world.gateway.toTun.isEmpty)
        #expect(world.clientReceived().last?.icmp.map { ($0.type, $0.code) } ?? (0, 0) == (3, 0))
        #expect(world.gateway.state.statistics.drops[.unreachable] == 1)
        #expect(world.gateway.state.statistics.drops[.prohibited] == 1)
    }

    @Test("the Internet resource admits any destination outside the proxy ranges, without filters")
    func internetResource() throws {
        let world = try GatewayWorld()
        world.gateway.kernel = ResourceHost.echo
        try world.authorize(.internet(id: ResourceId("cccccccc-0000-4000-8000-000000000003")!))
        try world.send(IpPacket.tcp(source: .v4(world.clientIpv4), destination: IpAddress("8.8.8.8")!, sourcePort: 40000,
                                    destinationPort: 25, flags: [.syn], payload: [UInt8]()))
        #expect(world.gateway.toTun.map(\.destination) == [IpAddress("8.8.8.8")!])
    }

    @Test("clients may not inject ICMP errors")
    func outboundIcmpError() throws {
        let world = try world()
        let original = try IpPacket.udp(source: host, destination: .v4(world.clientIpv4), sourcePort: 53, destinationPort: 5000,
                                        payload: [1])
        try world.send(IpPacket.icmpDestinationUnreachableProhibited(for: original))
        #expect(world.gateway.toTun.isEmpty)
        #expect(world.gateway.state.statistics.drops[.outboundIcmpError] == 1)
    }

    /// A packet connects the client; then the network drops everything for 120 s, so ICE fails on both sides.
    private func connectThenFail(_ world: GatewayWorld) throws {
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: host, sourcePort: 5000, destinationPort: 53, payload: [1]))
        world.simulation.dropRules.append { _ in true }
        world.simulation.run(for: .seconds(120))
        world.simulation.dropRules.removeAll()
    }

    @Test("the client's state outlives a failed connection: a new ICE session reaches the resource without a new authorisation")
    func stateAcrossIceSessions() throws {
        let world = try world()
        try connectThenFail(world)
        #expect(world.client.node.connectionCount == 0)
        #expect(world.gateway.state.clientIds == [world.clientId])
        // Only the transport is set up again (as after `flow_created` for another resource of the site).
        try world.authorize(Self.cidr, ref: "ref-2")
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: host, sourcePort: 5001, destinationPort: 53, payload: [2]),
                       settle: .seconds(5))
        #expect(world.gateway.toTun.count == 2)
    }

    @Test("a resource's reply after the client's connection failed is dropped as not connected, not an error (Firezone's NotConnected)")
    func replyAfterTheConnectionFailed() throws {
        let world = try world()
        try connectThenFail(world)
        #expect(world.gateway.state.node.connectionCount == 0, "the connection failed")
        #expect(world.gateway.state.clientIds == [world.clientId], "the client's state outlives its connection")

        var reply = try IpPacket.udp(source: host, destination: .v4(world.clientIpv4), sourcePort: 53, destinationPort: 5000, payload: [2])
        world.gateway.fromTun(&reply, in: world.simulation)
        #expect(world.gateway.errors.isEmpty, "\(world.gateway.errors)")
        #expect(world.gateway.state.statistics.drops[.notConnected] == 1)
    }

    @Test("shutdown sends every client a Goodbye")
    func shutdown() throws {
        let world = try world()
        try world.send(IpPacket.udp(source: .v4(world.clientIpv4), destination: host, sourcePort: 5000, destinationPort: 53, payload: [1]))
        world.gateway.state.shutdown(now: world.simulation.now)
        world.gateway.flush(in: world.simulation)
        world.simulation.run(for: .milliseconds(50))
        #expect(world.client.node.connectionCount == 0)
        #expect(world.clientReceived().last.map { (try? P2pControlEvent($0)) == .goodbye } == true)
    }

    @Test("resource_updated that changes a resource's type is refused and the old filters stay")
    func resourceTypeChangeRefused() throws {
        let world = try world()
        try world.gateway.deliver(.resourceUpdated(.internet(id: Self.resourceId)), in: world.simulation)
        #expect(world.gateway.events.contains { if case .refused(let reason) = $0 { reason.contains("type") } else { false } })
        try world.send(IpPacket.tcp(source: .v4(world.clientIpv4), destination: host, sourcePort: 40000, destinationPort: 22,
                                    flags: [.syn], payload: [UInt8]()))
        #expect(world.gateway.toTun.isEmpty, "still the CIDR resource's filters, not the Internet resource's none")
    }
}
