import Ice
import IpPacket
import PortalMessages
import SansIO
import Testing
@testable import Tunnel
@testable import TunnelSimulation

/// What the tunnel tells the app's log (seed commits #10386, #10275, #10135 and their kind), and how it signals
/// candidates to the portal (#10063).
@Suite("Tunnel: reports for the log, candidates per round")
struct TunnelReportTests {
    static func drain(_ poll: () -> TunnelReport?) -> [TunnelReport] {
        var reports: [TunnelReport] = []
        while let report = poll() { reports.append(report) }
        return reports
    }

    @Test("a connection's life in the log: relays added, created, path, established, goodbye on both sides, allocation freed")
    func connectionLifecycle() throws {
        let world = try ClientGatewayWorld()
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })
        let gid = "\(world.portal.gatewayId)", cid = "\(world.portal.clientId)"
        let client = Self.drain(world.client.state.pollReport)
        let gateway = Self.drain(world.gateway.state.pollReport)

        #expect(client.first { $0.message == "Added new TURN server" }?.fields["rid"] == world.relay.id, "\(client)")
        #expect(gateway.contains { $0.message == "Added new TURN server" && $0.fields["rid"] == world.relay.id }, "\(gateway)")
        for (reports, field, peer, authorized) in [(client, "gid", gid, "Resource access authorized"), (gateway, "cid", cid, "Access authorized")] {
            let messages = reports.filter { $0.fields[field] == peer && $0.level == .info }.map(\.message)
            #expect(Array(messages.prefix(4)) == ["Creating new connection", authorized, "Connection path selected", "Connection established"],
                    "\(reports)")
            #expect(reports.allSatisfy { $0.level == .info || $0.level == .debug })
            // The protocol detail at DEBUG: the candidates each way and the WireGuard session.
            for message in ["Signalling local candidate", "Received remote candidate", "ICE check succeeded", "WireGuard session established"] {
                #expect(reports.contains { $0.message == message && $0.fields[field] == peer && $0.level == .debug }, "\(message): \(reports)")
            }
            #expect(reports.contains { $0.message == "Allocated on relay" && $0.fields["rid"] == world.relay.id && $0.level == .info }, "\(reports)")
        }
        #expect(client.contains { $0.message == "Resource access authorized" && $0.fields["gid"] == gid && $0.level == .info }, "\(client)")
        #expect(client.contains { $0.message == "Resource list changed" && $0.level == .info }, "\(client)")
        #expect(gateway.contains { $0.message == "Access authorized" && $0.fields["cid"] == cid && $0.fields["rid"] != nil }, "\(gateway)")
        #expect(client.first { $0.message == "Connection established" }?.fields["path"]?.hasPrefix("direct ") == true, "\(client)")

        #expect(world.relay.server.allocatedClients.count == 2, "the client's and the gateway's")
        world.client.state.shutdown(now: world.simulation.now)
        world.client.flush(in: world.simulation)
        world.simulation.run(for: .milliseconds(200))
        #expect(world.relay.server.allocatedClients != [], "the gateway's stays")
        #expect(!world.relay.server.allocatedClients.contains(world.client.socket),
                "the client deleted its allocation on the way out")
        #expect(Self.drain(world.client.state.pollReport).map(\.description)
                == ["Connection closed proactively (sent goodbye) gid=\(gid)", "Freeing allocation rid=\(world.relay.id)"])
        #expect(Self.drain(world.gateway.state.pollReport).map(\.description) == ["Connection removed (peer said goodbye) cid=\(cid)"])
    }

    @Test("WireGuard's timers at DEBUG: the rekey after 120 s of traffic is a line; the packets are not")
    func rekeyTimerIsReported() throws {
        let world = try ClientGatewayWorld()
        for sequence in 1...14 {
            world.client.fromTun(try world.ping(world.host, sequence: UInt16(sequence)), in: world.simulation)
            world.simulation.run(for: .seconds(10))
        }
        #expect(world.client.toTun.count == 14, "every ping answered")
        let reports = Self.drain(world.client.state.pollReport) + Self.drain(world.gateway.state.pollReport)
        let timers = reports.filter { $0.message.hasPrefix("WireGuard timer") }
        #expect(!timers.isEmpty && timers.count < 5 && timers.allSatisfy { $0.level == .debug }, "\(timers)")
        #expect(reports.filter { $0.message == "WireGuard session established" }.count >= 4, "the first session and the rekey, both sides: \(reports)")
    }

    @Test("a connection's first candidates go to the portal as one message, highest priority first (#10063)")
    func candidatesInOneMessagePerRound() throws {
        let world = try ClientGatewayWorld()
        var fromClient: [[IceCandidate]] = [], fromGateway: [[IceCandidate]] = []
        let toPortalFromClient = world.client.onPortalMessage, toPortalFromGateway = world.gateway.onPortalMessage
        world.client.onPortalMessage = { message in
            if case .broadcastIceCandidates(let broadcast) = message { fromClient.append(broadcast.candidates) }
            toPortalFromClient(message)
        }
        world.gateway.onPortalMessage = { message in
            if case .broadcastIceCandidates(let broadcast) = message { fromGateway.append(broadcast.candidates) }
            toPortalFromGateway(message)
        }
        world.client.fromTun(try world.ping(world.host, sequence: 1), in: world.simulation)
        #expect(world.simulation.run(within: .seconds(5)) { world.client.toTun.count == 1 })

        for (side, messages) in [("client", fromClient), ("gateway", fromGateway)] {
            let first = try #require(messages.first, "\(side) signalled nothing")
            #expect(first.count >= 2, "\(side): host and relayed candidates together: \(messages)")
            #expect(first.map(\.priority) == first.map(\.priority).sorted(by: >), "\(side): \(first)")
            #expect(first.contains { $0.kind == .host } && first.contains { $0.kind == .relayed }, "\(side): \(first)")
        }
    }

    @Test("a round joins a peer's candidates, sorted and without duplicates; an invalidation in between starts a new message")
    func roundKeepsTheOrderOfAddAndInvalidate() {
        let host = IceCandidate(kind: .host, address: SocketAddress("10.0.0.1:52625")!, priority: 2_130_706_431)
        let relayed = IceCandidate(kind: .relayed, address: SocketAddress("192.0.2.1:50000")!, priority: 16_777_215)
        let reflexive = IceCandidate(kind: .serverReflexive, address: SocketAddress("203.0.113.1:52625")!, priority: 1_694_498_815)
        var round = CandidateRound<String>()
        round.add(relayed, for: "a", invalidated: false)
        round.add(host, for: "a", invalidated: false)
        round.add(host, for: "b", invalidated: false)
        round.add(reflexive, for: "a", invalidated: false)
        round.add(relayed, for: "a", invalidated: false)
        round.add(relayed, for: "a", invalidated: true)
        round.add(host, for: "a", invalidated: false)
        #expect(round.messages.map(\.peer) == ["a", "b", "a", "a"])
        #expect(round.messages.map(\.invalidated) == [false, false, true, false])
        #expect(round.messages[0].candidates == [host, reflexive, relayed])
        #expect(round.messages[3].candidates == [host])
    }
}
