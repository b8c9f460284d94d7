import Foundation
import Testing
import TestSupport

/// Our client and gateway through our relay alone: `firezone-relay` in coturn's place, joined to the portal (which
/// offers it with credentials from the secret it joined with), direct UDP between them dropped by nftables.
@Suite("End to end: the client and gateway through firezone-relay (root)")
struct EndToEndRelayTests {
    @Test("with direct UDP dropped: ping and a checksummed 4 MiB download through our relay, then again after it restarts with a new secret")
    func throughOurRelay() async throws {
        try await offPool {
            #expect(EndToEndLab.configWithOurRelay.contains("relay_tokens: [\(EndToEndLab.relayToken)]")
                    && !EndToEndLab.configWithOurRelay.contains("coturn"))
            let lab = try EndToEndLab(config: EndToEndLab.configWithOurRelay)
            defer { lab.tearDown() }
            try lab.startResourceHost()
            try lab.startPortal()
            try lab.startRelay()
            try lab.startGateway()
            try lab.dropDirectUdp()
            try lab.startClient(["--dns-control", "disabled"])
            let ping = try lab.pingResource(seconds: 30)
            #expect(ping.replies >= 3, "\(ping.output)\n\(lab.logs)")
            let download = try lab.inClient("sh", "-c", #"curl -sS --max-time 120 -o "$0" http://10.77.0.5/blob && sha256sum "$0""#,
                                            lab.directory + "/download")
            #expect(download.output.hasPrefix(lab.blobSha256), "\(download)\n\(lab.logs)")
            let metrics = try lab.inGateway("curl", "-sS", "--max-time", "10", "http://127.0.0.1:8089/metrics").output
            let lines = metrics.split(separator: "\n")
            let relayed = ["to_client", "to_peer"].map { (direction: String) -> Double in
                let prefix = "firezone_relay_relayed_datagrams_total{direction=\"\(direction)\"}"
                guard let line = lines.first(where: { $0.hasPrefix(prefix) }), let value = line.split(separator: " ").last else { return 0 }
                return Double(value) ?? 0
            }.reduce(0, +)
            #expect(relayed > 3000, "the download went through the relay: \(metrics)")
            #expect(EndToEndLab.droppedPackets(try lab.inGateway("nft", "list", "table", "inet", "fzblock").output) > 0)
            // The path the connection settled on names the relay. "Connection established" may first name a direct path
            // to the gateway's relayed address: the gateway's check through the relay can arrive before the portal
            // brings that candidate, which ICE then knows only as peer-reflexive; the candidate's arrival corrects the
            // name with "Updating peer socket".
            let pathLines = lab.log("client").split(separator: "\n").map(String.init)
                .filter { $0.contains("Connection established") || $0.contains("Updating peer socket") }
            let settled = pathLines.last.map { line in
                line.contains("Updating peer socket") ? line.components(separatedBy: " new=").last?.components(separatedBy: " old=").first ?? "" : line
            }
            #expect(pathLines.contains { $0.contains("Connection established") } && settled?.contains("relay") == true,
                    "the path names a relay: \(pathLines)")

            #expect(lab.log("portal").contains("Relay joined"), "\(lab.log("portal"))")
            #expect(try lab.inGateway("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8089/readyz").output == "200")

            // The relay restarts with a new secret, so it is a new relay to the portal: the old one is reported gone
            // (at once, as it comes back from the same address) and the new one offered; both sides allocate there.
            #expect(lab.stop("relay") == 0)
            try lab.startRelay(log: "relay-2")
            let restarted = Date()
            let after = try lab.pingResource(seconds: 90)
            #expect(after.replies >= 3, "\(after.output)\n\(lab.logs)")
            print("relay restart: back after \(Date().timeIntervalSince(restarted)) s")
            for side in ["client", "gateway"] {
                let added = lab.log(side).components(separatedBy: "Added new TURN server").count - 1
                #expect(lab.log(side).contains("Removed TURN server") && added == 2, "\(side) swapped relays: \(lab.log(side))")
            }
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())\n\(lab.logs)")
        }
    }
}
