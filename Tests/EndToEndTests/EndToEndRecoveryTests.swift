import Foundation
import Testing
import TestSupport

/// The binaries keep the tunnel up through the restarts of their peers and through packet loss (``EndToEndLab``).
@Suite("End to end: recovery after restarts, and packet loss (root)")
struct EndToEndRecoveryTests {
    @Test("the client reconnects after the gateway and the portal restart; new DNS and relayed flows work afterwards")
    func restarts() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startInfrastructure()
            try lab.startClient()
            let before = try lab.pingResource()
            #expect(before.replies >= 3, "\(before.output)\n\(lab.logs)")

            // The gateway says Goodbye on SIGTERM: the client drops the connection at once and makes a new one
            // with the new gateway instead of waiting for ICE to give up on the old one.
            #expect(lab.stop("gateway") == 0)
            try lab.startGateway(log: "gateway-2")
            let gatewayBack = Date()
            let afterGateway = try lab.pingResource(seconds: 30)
            let gatewaySeconds = Date().timeIntervalSince(gatewayBack)
            #expect(afterGateway.replies >= 3, "\(afterGateway.output)\n\(lab.logs)")
            #expect(gatewaySeconds < 8, "back \(gatewaySeconds) s after the gateway restarted; ICE alone would take longer")

            // The portal goes away and comes back with the same database: both sides rejoin, and a new flow (the
            // DNS resource, which needs the portal's create_flow) works.
            #expect(lab.stop("portal") == 0)
            try lab.startPortal(log: "portal-2")
            try lab.waitFor("Client joined", in: "portal-2")
            let page = try lab.inClient("curl", "-sS", "--max-time", "30", "http://web.lab.test/")
            #expect(page.output == EndToEndLab.page, "\(page)\n\(lab.logs)")

            // The gateway's allocation on coturn survived the portal's restart (the same credentials came back in
            // `init`): a client that may only go through coturn connects.
            try lab.dropDirectUdp()
            lab.stop("client")
            try lab.startClient(log: "client-2")
            let relayed = try lab.pingResource()
            #expect(relayed.replies >= 3, "relayed after the portal restarted\n\(relayed.output)\n\(lab.logs)")
            let dropped = try lab.inGateway("nft", "list", "table", "inet", "fzblock").output
            #expect(EndToEndLab.droppedPackets(dropped) > 0, "the direct path was tried and dropped: \(dropped)")
            print("recovery: gateway \(gatewaySeconds) s")
        }
    }

    /// coturn keeps its allocations in memory: after a restart it knows none of them, answers BINDING as before
    /// and drops everything else. The client's ICE gives up on the dead relayed path, the failed connection
    /// makes the client probe its allocation (437: allocate again), the next packet starts a new flow, and the
    /// gateway, replacing the client's old connection, probes its own allocation too.
    @Test("with only the relayed path, the tunnel comes back after coturn restarts")
    func coturnRestart() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startCoturn()
            try lab.startPortal()
            try lab.startGateway()
            try lab.dropDirectUdp()
            try lab.startClient(["--dns-control", "disabled"])
            let before = try lab.pingResource()
            #expect(before.replies >= 3, "relayed before coturn restarts\n\(before.output)\n\(lab.logs)")
            lab.stop("coturn")
            try lab.startCoturn(log: "coturn-2")
            let restarted = Date()
            let after = try lab.pingResource(seconds: 90)
            let seconds = Date().timeIntervalSince(restarted)
            #expect(after.replies >= 3, "\(after.output)\n\(lab.logs)")
            let dropped = try lab.inGateway("nft", "list", "table", "inet", "fzblock").output
            #expect(EndToEndLab.droppedPackets(dropped) > 0, "the direct path was tried and dropped: \(dropped)")
            print("recovery: coturn \(seconds) s")
        }
    }

    /// coturn drops both allocations under a live relayed connection (through its CLI; on its own it does so after
    /// a failed send to a peer) and then answers their CHANNEL-BINDs with 400 and their ChannelData with silence.
    /// Both sides must find out that their allocation is gone, allocate again and carry the tunnel on the new ones.
    @Test("with only the relayed path, the tunnel comes back within seconds after coturn drops both allocations")
    func coturnDropsAllocations() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startCoturn(cli: true)
            try lab.startPortal()
            try lab.startGateway()
            try lab.dropDirectUdp()
            try lab.startClient(["--dns-control", "disabled"])
            let before = try lab.pingResource()
            #expect(before.replies >= 3, "relayed before coturn drops the allocations\n\(before.output)\n\(lab.logs)")
            let cancelled = try lab.cancelCoturnSessions()
            let dropped = Date()
            #expect(cancelled.count >= 2, "the client's and the gateway's sessions: \(cancelled)")
            let after = try lab.pingResource(seconds: 60)
            let seconds = Date().timeIntervalSince(dropped)
            #expect(after.replies >= 3, "\(after.output)\n\(lab.logs)")
            #expect(seconds < 10, "back \(seconds) s after coturn dropped the allocations")
            // The log tells why: a probe of the allocation, the relay's answer that it is gone, a new allocation.
            let lines = (lab.log("client") + lab.log("gateway")).split(separator: "\n")
            for line in ["Checking whether the relay still holds our allocation", "Relay no longer has our allocation; allocating again"] {
                #expect(lines.contains { $0.contains(" INFO ") && $0.contains(line) && $0.contains("rid=") }, "'\(line)': \(lab.logs)")
            }
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())")
            print("recovery: coturn dropped allocations \(seconds) s")
        }
    }

    /// SIGHUP resets the session (new key, new sockets, a new portal connection); then the client's namespace
    /// moves from 10.99.0.1 to 10.99.0.11 (the DHCP lease changed, the laptop roamed) and the client, told by
    /// rtnetlink, resets again.
    @Test("the tunnel comes back after SIGHUP and after the client's address changes")
    func clientAddressChange() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startInfrastructure()
            try lab.startClient(["--dns-control", "disabled"])
            let before = try lab.pingResource()
            #expect(before.replies >= 3, "\(before.output)\n\(lab.logs)")
            lab.signal("client", SIGHUP)
            try lab.waitFor("Caught SIGHUP", in: "client")
            let afterReset = try lab.pingResource(seconds: 30)
            #expect(afterReset.replies >= 3, "after SIGHUP: \(afterReset.output)\n\(lab.logs)")
            // Removed first: deleting a primary address would take a secondary one on the same subnet with it.
            _ = try lab.client.ip("addr", "del", "10.99.0.1/24", "dev", "eth0")
            _ = try lab.client.ip("addr", "add", "10.99.0.11/24", "dev", "eth0")
            let moved = Date()
            let after = try lab.pingResource(seconds: 60)
            let seconds = Date().timeIntervalSince(moved)
            #expect(after.replies >= 3, "\(after.output)\n\(lab.logs)")
            #expect(lab.log("client").contains("Network changed: resetting the session"), "\(lab.logs)")
            print("recovery: address change \(seconds) s")
        }
    }

    @Test("with 5 % and then 20 % of the underlay's packets lost each way, a 4 MiB download arrives intact", arguments: [5, 20])
    func lossyUnderlay(percent: Int) async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startInfrastructure()
            try lab.loseUnderlayPackets(percent: percent)
            try lab.startClient()
            // Each attempt writes the file afresh (`--retry` into a pipe would append a cut-off attempt's bytes).
            let download = try lab.inClient("sh", "-c", #"for attempt in 1 2 3; do curl -sS --max-time 180 -o "$0" http://web.lab.test/blob && break; done; sha256sum "$0""#,
                                            lab.directory + "/download")
            let dropped = EndToEndLab.droppedPackets(try lab.inGateway("nft", "list", "table", "inet", "fzloss").output)
            #expect(download.output.hasPrefix(lab.blobSha256), "\(download)\n\(lab.logs)")
            #expect(dropped > 0, "nftables lost packets")
        }
    }
}
