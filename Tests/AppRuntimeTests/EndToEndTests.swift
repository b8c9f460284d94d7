import Foundation
import Testing
import TestSupport

/// The whole system as processes: the development portal, coturn and `firezone-gateway` in one namespace,
/// `firezone-client` in another, joined by a veth pair. The kernel's ping from the client's namespace reaches a
/// resource behind the gateway through the tunnel, and both binaries shut down cleanly.
@Suite("End to end: portal, coturn, gateway and client processes in namespaces (root)")
struct EndToEndTests {
    static let config = """
        account_slug: dev
        upstream_dns: [10.99.0.2]
        sites:
          - name: hq
            gateway_tokens: [gateway-token-hq]
        actors:
          - name: alice
            tokens: [client-token-alice]
        resources:
          - name: lab
            type: cidr
            address: 10.77.0.0/24
            sites: [hq]
            filters: [icmp, tcp/80]
        policies:
          - actor: alice
            resource: lab
        relays:
          - name: coturn
            addresses: ["10.99.0.2:3478"]
            coturn_secret: dev-turn-secret
        """

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
    }

    static func run(blockingDirectUdp: Bool) async throws -> [String: String] {
        try await offPool { () throws -> [String: String] in
            let client = try TestNamespace("xc"), gateway = try TestNamespace("xg")
            defer { client.remove(); gateway.remove() }
            let directory = try Binaries.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let veth = uniqueName("fzx")
            try Shell.run("ip", "link", "add", veth, "netns", client.name, "type", "veth", "peer", "name", "eth0", "netns", gateway.name)
            _ = try client.ip("link", "set", veth, "name", "eth0")
            for (namespace, address) in [(client, "10.99.0.1/24"), (gateway, "10.99.0.2/24")] {
                _ = try namespace.ip("addr", "add", address, "dev", "eth0")
                _ = try namespace.ip("link", "set", "eth0", "up")
            }
            _ = try gateway.ip("addr", "add", "10.77.0.5/32", "dev", "lo")
            try Self.config.write(toFile: directory + "/portal.yaml", atomically: true, encoding: .utf8)

            let coturn = try Binaries.start(["turnserver", "-n", "--listening-ip=10.99.0.2", "--listening-port=3478", "--relay-ip=10.99.0.2",
                                             "--min-port=49152", "--max-port=65535", "--realm=firezone", "--use-auth-secret",
                                             "--static-auth-secret=dev-turn-secret", "--fingerprint", "--no-tls", "--no-dtls", "--no-cli",
                                             "--simple-log", "--log-file=stdout"], in: gateway, log: directory + "/coturn.log", system: true)
            defer { coturn.terminateAndWait() }
            let portal = try Binaries.start(["firezone-portal", "--config", directory + "/portal.yaml", "--listen", "10.99.0.2:8081",
                                             "--database", directory + "/portal.sqlite"], in: gateway, log: directory + "/portal.log")
            defer { portal.terminateAndWait() }
            try Binaries.waitFor("listening on 10.99.0.2:8081", in: directory + "/portal.log")
            let gatewayProcess = try Binaries.start(["firezone-gateway", "gateway-token-hq"], in: gateway, log: directory + "/gateway.log",
                                                    environment: ["FIREZONE_API_URL": "ws://10.99.0.2:8081", "FIREZONE_ID": "e2e-gateway",
                                                                  "HEALTH_CHECK_ADDR": "127.0.0.1:8080"])
            defer { gatewayProcess.terminateAndWait() }
            try Binaries.waitFor("TUN device configured", in: directory + "/gateway.log")
            if blockingDirectUdp {
                let log = try String(contentsOfFile: directory + "/gateway.log", encoding: .utf8)
                guard let port = log.split(separator: "Listening on 0.0.0.0:").last?.prefix(while: \.isNumber) else {
                    throw ShellError.failed("the gateway's port", log)
                }
                for command in ["add table inet fzblock",
                                "add chain inet fzblock input { type filter hook input priority 0 ; }",
                                "add chain inet fzblock output { type filter hook output priority 0 ; }",
                                "add rule inet fzblock input ip saddr 10.99.0.1 udp dport \(port) counter drop",
                                "add rule inet fzblock output ip daddr 10.99.0.1 udp sport \(port) counter drop"] {
                    try Shell.run("ip", "netns", "exec", gateway.name, "nft", command)
                }
            }
            let clientProcess = try Binaries.start(["firezone-client", "--dns-control", "disabled"], in: client, log: directory + "/client.log",
                                                   environment: ["FIREZONE_API_URL": "ws://10.99.0.2:8081", "FIREZONE_ID": "e2e-client",
                                                                 "FIREZONE_TOKEN": "client-token-alice"])
            defer { clientProcess.terminateAndWait() }
            try Binaries.waitFor("Tunnel ready", in: directory + "/client.log")
            let ping = try Shell.run("ip", "netns", "exec", client.name, "ping", "-n", "-c", "3", "-i", "0.2", "-w", "20", "10.77.0.5",
                                     allowFailure: true)
            let rules = try client.ip("rule", "show")
            let table = try client.ip("route", "show", "table", "\(0x2021_FD00)")
            let clientStatus = clientProcess.terminateAndWait()
            let gatewayStatus = gatewayProcess.terminateAndWait()
            let rulesAfter = try client.ip("rule", "show")
            let read = { (name: String) in (try? String(contentsOfFile: directory + "/\(name).log", encoding: .utf8)) ?? "" }
            let nft = blockingDirectUdp ? try Shell.run("ip", "netns", "exec", gateway.name, "nft", "list", "ruleset").output : ""
            let dropped = nft.split(separator: "\n").filter { $0.contains("drop") }
                .compactMap { $0.split(separator: "packets ").last?.split(separator: " ").first.flatMap { Int($0) } }.reduce(0, +)
            return ["ping": ping.output, "pingStatus": "\(ping.status)", "rules": rules, "table": table, "clientStatus": "\(clientStatus)",
                    "gatewayStatus": "\(gatewayStatus)", "rulesAfter": rulesAfter, "client": read("client"), "gateway": read("gateway"),
                    "nft": nft, "dropped": "\(dropped)"]
        }
    }
}
