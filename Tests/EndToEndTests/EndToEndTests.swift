import Foundation
import Testing
import TestSupport

/// The whole system as processes: the development portal, coturn and `firezone-gateway` in one namespace,
/// `firezone-client` in another, joined by a veth pair. The kernel's ping from the client's namespace reaches a
/// resource behind the gateway through the tunnel, and both binaries shut down cleanly.
@Suite("End to end: portal, coturn, gateway and client processes in namespaces (root)")
struct EndToEndTests {
    @Test("a ping from the client's namespace reaches the resource behind the gateway; both exit 0 on SIGTERM")
    func pingThroughTheBinaries() async throws {
        let result = try await Self.run(blockingDirectUdp: false)
        Self.expectTunnelWorked(result)
        Self.expectStatus(result, path: "direct")
    }

    /// nftables in the gateway's namespace drops UDP between the client and the gateway's own socket both ways,
    /// so the only paths left go through coturn.
    @Test("with direct UDP dropped by nftables the ping goes through coturn")
    func relayedPath() async throws {
        let result = try await Self.run(blockingDirectUdp: true)
        Self.expectTunnelWorked(result)
        Self.expectStatus(result, path: "relayed")
        let dropped = result["dropped"].flatMap { Int($0) } ?? 0
        #expect(dropped > 0, "the client tried the direct path and nftables dropped it: \(result["nft"] ?? "")")
    }

    static func expectTunnelWorked(_ result: [String: String]) {
        let logs = "client log:\n\(result["client"]!)\ngateway log:\n\(result["gateway"]!)"
        #expect(result["pingStatus"] == "0" && pingReplies(result["ping"]!) >= 3, "\(result["ping"]!)\n\(logs)")
        #expect(result["rules"]!.contains("not from all fwmark 0xfd002021 lookup 539098368"), "\(result["rules"]!)")
        #expect(result["table"]!.contains("10.77.0.0/24 dev tun-firezone"), "\(result["table"]!)")
        #expect(result["clientStatus"] == "0" && result["gatewayStatus"] == "0", "\(logs)")
        #expect(!result["rulesAfter"]!.contains("fwmark"), "the client removes its rule: \(result["rulesAfter"]!)")
        #expect(result["client"]!.contains("INFO firezone_headless_client: Tunnel ready"), "\(logs)")
        // Nothing changes the client's addresses here; IPv6 finishing duplicate address detection on its link is no reset.
        #expect(!result["client"]!.contains("Network changed"), "\(logs)")
        // The gateway's Prometheus metrics count the pings it wrote to its TUN device and the client's connection.
        let metrics = Dictionary(result["metrics"]!.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            line.split(separator: " ").count == 2 ? (String(line.split(separator: " ")[0]), Double(line.split(separator: " ")[1]) ?? -1) : nil
        }, uniquingKeysWith: { first, _ in first })
        #expect((metrics["firezone_gateway_tun_packets_written_total"] ?? 0) >= 3, "\(result["metrics"]!)")
        #expect((metrics["firezone_gateway_tun_frames_written_total"] ?? 0) >= 3, "pings are written one by one: \(result["metrics"]!)")
        #expect(metrics["firezone_gateway_client_connections"] == 1, "\(result["metrics"]!)")
        #expect(metrics["firezone_gateway_dropped_packets_total{reason=\"prohibited\"}"] == 0, "\(result["metrics"]!)")
        // `--metrics stdout`: the client prints its metrics once more when it shuts down.
        let printed = result["client"]!.split(separator: "\n").filter { $0.hasPrefix("firezone_client_tun_packets_read_total ") }
        #expect(printed.count == 1 && (Int(printed[0].split(separator: " ")[1]) ?? 0) >= 3, "\(logs)")
    }

    /// `firezone-client status` and `firezone-gateway status` name the path the lab forced (through coturn, the one
    /// relay, when direct UDP is dropped), the traffic of the pings, the handshake, ICE's pair and RTT, and the
    /// resource; the gateway's metrics carry the same peer.
    static func expectStatus(_ result: [String: String], path: String) {
        for side in ["client", "gateway"] {
            let json = result[side + "StatusJson"] ?? ""
            guard let status = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
                Issue.record("\(side) status --json: \(json)")
                continue
            }
            let peers = EndToEndLab.peers(status)
            #expect(status["role"] as? String == side && peers.count == 1, "\(json)")
            guard let peer = peers.first else { continue }
            #expect(peer["state"] as? String == "connected" && peer["path"] as? String == path, "\(side): \(json)")
            #expect((peer["packetsReceived"] as? Int ?? 0) >= 3 && (peer["packetsSent"] as? Int ?? 0) >= 3, "\(side): \(json)")
            #expect((peer["bytesReceived"] as? Int ?? 0) >= 3 * 116, "three pings of 84 bytes and 32 of WireGuard's: \(json)")
            #expect((peer["lastHandshakeSecondsAgo"] as? Double).map { $0 >= 0 && $0 < 60 } == true, "\(side): \(json)")
            #expect((peer["rttMilliseconds"] as? Double).map { $0 > 0 && $0 < 1000 } == true, "\(side): \(json)")
            #expect((peer["resources"] as? [String])?.isEmpty == false, "\(side): \(json)")
            let local = peer["localCandidate"] as? String ?? "", remote = peer["remoteCandidate"] as? String ?? ""
            let relays = status["relays"] as? [[String: Any]] ?? []
            #expect(relays.count == 1 && (relays.first?["addresses"] as? [String]) == ["10.99.0.2:3478"], "\(side): \(json)")
            if path == "direct" {
                #expect(peer["relay"] == nil && peer["peerRelayAddress"] == nil && !local.hasPrefix("relay") && !remote.hasPrefix("relay"),
                        "\(side): \(json)")
            } else {
                // Through coturn: this side's own allocation, or the peer's (then the peer's relayed address is named).
                let ownRelay = (peer["relay"] as? [String: Any])?["addresses"] as? [String]
                #expect(ownRelay == ["10.99.0.2:3478"] || (peer["peerRelayAddress"] as? String)?.hasPrefix("10.99.0.2:") == true,
                        "\(side): \(json)")
                // The peer's relayed address may still be peer-reflexive to ICE: a check from it can come before the portal
                // brings the candidate.
                let peerRelayed = remote.hasPrefix("relay") || (remote.hasPrefix("prflx") && peer["peerRelayAddress"] != nil)
                #expect(local.hasPrefix("relay") || peerRelayed, "\(side): \(json)")
            }
            let text = result[side + "StatusText"] ?? ""
            #expect(text.contains("peer \(peer["id"] as? String ?? "?")") && text.contains("connected, \(path)") && text.contains("rtt:"),
                    "\(side) status: \(text)")
        }
        // What a person reading the INFO logs learns: the resources, the authorisation on both sides, the relay
        // allocation, the connection and its path, each line with Firezone's ids.
        let peerId = { (side: String) -> String in
            let json = result[side + "StatusJson"] ?? ""
            let status = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
            return EndToEndLab.peers(status).first?["id"] as? String ?? "?"
        }
        let (gid, cid) = (peerId("client"), peerId("gateway"))
        let client = result["client"]!, gateway = result["gateway"]!
        for (log, line) in [(client, "Resource list changed"), (client, "Resource access authorized gid=\(gid) rid="),
                            (client, "Allocated on relay"), (client, "Connection established gid=\(gid) path="),
                            (gateway, "Access authorized cid=\(cid)"), (gateway, "Allocated on relay"),
                            (gateway, "Connection established cid=\(cid) path=")] {
            #expect(log.split(separator: "\n").contains { $0.contains(" INFO ") && $0.contains(line) }, "'\(line)' at INFO:\n\(log)")
        }
        if path == "relayed" {
            for line in ["Signalling local candidate", "Received remote candidate", "ICE check succeeded", "WireGuard session established",
                         "Bound channel"] {
                let id = line == "Bound channel" ? "rid=" : "cid=\(cid)"
                #expect(gateway.split(separator: "\n").contains { $0.contains(" DEBUG ") && $0.contains(line) && $0.contains(id) },
                        "'\(line)' with \(id) at DEBUG:\n\(gateway)")
            }
            let lines = gateway.split(separator: "\n").count
            #expect(lines < 300, "\(lines) DEBUG lines for a connection and three pings: \(gateway)")
        }
        let pathLine = client.split(separator: "\n").last { $0.contains("Connection established") || $0.contains("Updating peer socket") } ?? ""
        #expect(path == "direct" ? pathLine.contains("direct") : pathLine.contains("relay"), "the logged path is \(path): \(pathLine)")
        // `--metrics stdout`: the client's last print, at shutdown, names the gateway on its path.
        #expect(result["client"]!.split(separator: "\n").contains { $0.hasPrefix("firezone_client_peer_sent_packets_total{peer=\"\(gid)\",path=\"\(path)\"}") },
                "\(result["client"]!)")
        let peerSeries = result["metrics"]!.split(separator: "\n").filter { $0.hasPrefix("firezone_gateway_peer_received_packets_total{") }
        #expect(peerSeries.count == 1 && peerSeries[0].contains("path=\"\(path)\"") && (Double(peerSeries[0].split(separator: " ").last ?? "") ?? 0) >= 3,
                "\(result["metrics"]!)")
    }

    static func run(blockingDirectUdp: Bool) async throws -> [String: String] {
        try await offPool { () throws -> [String: String] in
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startCoturn()
            try lab.startPortal()
            // Through the relay the gateway logs at DEBUG too: the protocol detail, still never a line per packet.
            if blockingDirectUdp { lab.gatewayLogFilter = "debug" }
            try lab.startGateway()
            if blockingDirectUdp { try lab.dropDirectUdp() }
            try lab.startClient(["--dns-control", "disabled", "--metrics", "stdout"])
            let ping = try lab.inClient("ping", "-n", "-c", "3", "-i", "0.2", "-w", "20", "10.77.0.5")
            let metrics = try lab.inGateway("curl", "-sS", "--max-time", "10", "http://127.0.0.1:8080/metrics").output
            var statuses: [String: String] = [:]
            for side in ["client", "gateway"] {
                let status = try lab.status(side)
                statuses[side + "StatusJson"] = String(decoding: try JSONSerialization.data(withJSONObject: status.json), as: UTF8.self)
                statuses[side + "StatusText"] = status.text
            }
            let rules = try lab.client.ip("rule", "show")
            let table = try lab.client.ip("route", "show", "table", "\(0x2021_FD00)")
            let clientStatus = lab.stop("client")
            let gatewayStatus = lab.stop("gateway")
            let rulesAfter = try lab.client.ip("rule", "show")
            let nft = blockingDirectUdp ? try lab.inGateway("nft", "list", "ruleset").output : ""
            return ["ping": ping.output, "pingStatus": "\(ping.status)", "rules": rules, "table": table, "clientStatus": "\(clientStatus)",
                    "gatewayStatus": "\(gatewayStatus)", "rulesAfter": rulesAfter, "client": lab.log("client"), "gateway": lab.log("gateway"),
                    "nft": nft, "metrics": metrics, "dropped": "\(EndToEndLab.droppedPackets(nft))"].merging(statuses) { first, _ in first }
        }
    }
}
