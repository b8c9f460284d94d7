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
    }

    /// nftables in the gateway's namespace drops UDP between the client and the gateway's own socket both ways,
    /// so the only paths left go through coturn.
    @Test("with direct UDP dropped by nftables the ping goes through coturn")
    func relayedPath() async throws {
        let result = try await Self.run(blockingDirectUdp: true)
        Self.expectTunnelWorked(result)
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

    static func run(blockingDirectUdp: Bool) async throws -> [String: String] {
        try await offPool { () throws -> [String: String] in
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startCoturn()
            try lab.startPortal()
            try lab.startGateway()
            if blockingDirectUdp { try lab.dropDirectUdp() }
            try lab.startClient(["--dns-control", "disabled", "--metrics", "stdout"])
            let ping = try lab.inClient("ping", "-n", "-c", "3", "-i", "0.2", "-w", "20", "10.77.0.5")
            let metrics = try lab.inGateway("curl", "-sS", "--max-time", "10", "http://127.0.0.1:8080/metrics").output
            let rules = try lab.client.ip("rule", "show")
            let table = try lab.client.ip("route", "show", "table", "\(0x2021_FD00)")
            let clientStatus = lab.stop("client")
            let gatewayStatus = lab.stop("gateway")
            let rulesAfter = try lab.client.ip("rule", "show")
            let nft = blockingDirectUdp ? try lab.inGateway("nft", "list", "ruleset").output : ""
            return ["ping": ping.output, "pingStatus": "\(ping.status)", "rules": rules, "table": table, "clientStatus": "\(clientStatus)",
                    "gatewayStatus": "\(gatewayStatus)", "rulesAfter": rulesAfter, "client": lab.log("client"), "gateway": lab.log("gateway"),
                    "nft": nft, "metrics": metrics, "dropped": "\(EndToEndLab.droppedPackets(nft))"]
        }
    }
}
