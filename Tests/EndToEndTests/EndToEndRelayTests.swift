import Foundation
import Testing
import TestSupport

/// Our client and gateway through our relay alone: `firezone-relay` in coturn's place, direct UDP between them
/// dropped by nftables.
@Suite("End to end: the client and gateway through firezone-relay (root)")
struct EndToEndRelayTests {
    @Test("with direct UDP dropped: ping and a checksummed 4 MiB download through our relay, then again after it restarts")
    func throughOurRelay() async throws {
        try await offPool {
            #expect(EndToEndLab.configWithOurRelay.contains("stamp_secret: \(EndToEndLab.relaySecret)"))
            let lab = try EndToEndLab(config: EndToEndLab.configWithOurRelay)
            defer { lab.tearDown() }
            try lab.startResourceHost()
            try lab.startRelay()
            try lab.startPortal()
            try lab.startGateway()
            try lab.dropDirectUdp()
            try lab.startClient(["--dns-control", "disabled"])
            let ping = try lab.pingResource(seconds: 30)
            #expect(ping.replies >= 3, "\(ping.output)\n\(lab.logs)")
            let download = try lab.inClient("sh", "-c", #"curl -sS --max-time 120 -o "$0" http://10.77.0.5/blob && sha256sum "$0""#,
                                            lab.directory + "/download")
            #expect(download.output.hasPrefix(lab.blobSha256), "\(download)\n\(lab.logs)")
            let metrics = try lab.inGateway("curl", "-sS", "--max-time", "10", "http://127.0.0.1:8089/metrics").output
            let relayed = ["to_client", "to_peer"].compactMap { direction in
                metrics.split(separator: "\n").first { $0.hasPrefix("firezone_relay_relayed_datagrams_total{direction=\"\(direction)\"}") }
                    .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            }.reduce(0, +)
            #expect(relayed > 3000, "the download went through the relay: \(metrics)")
            #expect(EndToEndLab.droppedPackets(try lab.inGateway("nft", "list", "table", "inet", "fzblock").output) > 0)
            let established = lab.log("client").split(separator: "\n").filter { $0.contains("Connection established") }
            #expect(!established.isEmpty && established.allSatisfy { $0.contains("relay") }, "the paths name a relay: \(established)")

            // The relay restarts and knows no allocation: both sides find out (437) and allocate again.
            #expect(lab.stop("relay") == 0)
            try lab.startRelay(log: "relay-2")
            let restarted = Date()
            let after = try lab.pingResource(seconds: 90)
            #expect(after.replies >= 3, "\(after.output)\n\(lab.logs)")
            print("relay restart: back after \(Date().timeIntervalSince(restarted)) s")
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())\n\(lab.logs)")
        }
    }
}
