import Foundation
import Testing
import TestSupport

/// The client and gateway binaries with a CIDR and a DNS resource (``EndToEndLab``): the client rewrites its
/// namespace's resolv.conf (`--dns-control etc-resolv-conf`), so the kernel's resolver, `dig` and `curl` find the
/// DNS resource by name; the filters let ICMP and TCP port 80 through and refuse the rest.
@Suite("End to end: DNS and CIDR resources, filters, recovery and loss through the binaries (root)")
struct EndToEndResourcesTests {
    @Test("dig gets a proxy IP for the DNS resource, curl fetches its page, filtered ports are refused, resolv.conf comes back")
    func dnsResourceAndFilters() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            lab.gatewayLogFilter = "info,flow_logs=trace"
            try lab.startInfrastructure()
            try lab.startClient(["--dns-control", "etc-resolv-conf", "--log-dir", lab.directory + "/client-logs"])
            let resolvConf = lab.clientResolvConfNow
            let proxy = try lab.inClient("dig", "+short", "+time=5", "+tries=2", "web.lab.test", "A")
            let outside = try lab.inClient("dig", "+short", "+time=5", "+tries=2", "outside.test", "A")
            let page = try lab.inClient("curl", "-sS", "--max-time", "20", "http://web.lab.test/")
            // Both sides close the connection with FIN: the gateway logs the flow at once.
            try lab.waitFor("TCP flow completed", in: "gateway")
            let flowLog = lab.log("gateway").split(separator: "\n").first { $0.contains("TCP flow completed") }.map(String.init) ?? ""
            let filteredByName = try lab.inClient("curl", "-sS", "--max-time", "20", "http://web.lab.test:8080/")
            let filteredCidr = try lab.inClient("curl", "-sS", "--max-time", "20", "http://10.77.0.5:8080/")
            let direct = try lab.inGateway("curl", "-sS", "--max-time", "5", "http://10.77.0.5:8080/")
            let status = lab.stop("client")
            let restored = lab.clientResolvConfNow
            let logs = lab.logs

            #expect(resolvConf.hasPrefix("# BEGIN Firezone DNS configuration") && resolvConf.contains("nameserver 100.100.111.1"),
                    "the client points its namespace's resolver at the sentinel: \(resolvConf)")
            #expect(proxy.status == 0 && proxy.output.hasPrefix("100.96."), "a proxy IP for web.lab.test: \(proxy.output)\n\(logs)")
            #expect(outside.output.trimmingCharacters(in: .whitespacesAndNewlines) == "10.99.0.9",
                    "a name outside the resources goes to the upstream resolver: \(outside.output)\n\(logs)")
            #expect(page.status == 0 && page.output == EndToEndLab.page, "\(page)\n\(logs)")
            let flow = Dictionary(flowLog.split(separator: " ").compactMap { field -> (String, String)? in
                let parts = field.split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }, uniquingKeysWith: { first, _ in first })
            #expect(flowLog.contains("TRACE flow_logs::tcp: TCP flow completed"), "a flow log record: \(flowLog)\n\(logs)")
            #expect(flow["inner_dst_ip"] == proxy.output.split(separator: "\n").first.map(String.init) && flow["inner_dst_port"] == "80"
                    && flow["inner_src_ip"]?.hasPrefix("100.") == true && flow["outer_src_ip"] == "10.99.0.1", "\(flow)")
            #expect((Int(flow["tx_packets"] ?? "") ?? 0) >= 4 && (Int(flow["rx_packets"] ?? "") ?? 0) >= 4, "a whole HTTP exchange: \(flow)")
            #expect(flow["resource_name"] == "web" && flow["resource_address"] == "web.lab.test" && flow["inner_domain"] == "web.lab.test"
                    && flow["actor_name"] == "alice" && flow["client_version"] != nil && flow["device_os_name"] != nil,
                    "the portal's details of the flow: \(flow)")
            #expect(direct.output == EndToEndLab.page, "port 8080 serves the page to anyone but the tunnel")
            // curl exits 7 (could not connect) at once on the gateway's ICMP "administratively prohibited", not 28 (timeout).
            #expect(filteredByName.status == 7, "tcp/8080 is not in the DNS resource's filters: \(filteredByName)")
            #expect(filteredCidr.status == 7, "tcp/8080 is not in the CIDR resource's filters: \(filteredCidr)")
            #expect(status == 0, "\(logs)")
            #expect(restored == EndToEndLab.clientResolvConf, "the client puts resolv.conf back on exit: \(restored)")
            let logFile = (try? String(contentsOfFile: lab.directory + "/client-logs/latest", encoding: .utf8)) ?? ""
            #expect(logFile.contains("INFO firezone_headless_client: Tunnel ready") && logFile.contains("Caught SIGTERM"),
                    "--log-dir holds the same log: \(logFile)")
        }
    }

    /// The Internet resource routes everything else through the gateway: 198.51.100.7 (on the gateway's
    /// loopback) is outside every other resource, and the client's namespace has no route to it of its own.
    @Test("with --activate-internet-resource, an address outside every resource is reached through the gateway")
    func internetResource() async throws {
        try await offPool {
            let config = EndToEndLab.config
                .replacingOccurrences(of: "\npolicies:\n", with: """

                      - name: internet
                        type: internet
                        sites: [hq]
                    policies:
                      - actor: alice
                        resource: internet

                    """)
            let lab = try EndToEndLab(config: config)
            defer { lab.tearDown() }
            _ = try lab.gateway.ip("addr", "add", "198.51.100.7/32", "dev", "lo")
            try lab.startInfrastructure()
            let unrouted = try lab.inClient("ping", "-n", "-c", "1", "-w", "2", "198.51.100.7")
            try lab.startClient(["--dns-control", "disabled", "--activate-internet-resource"])
            let table = try lab.client.ip("route", "show", "table", "\(0x2021_FD00)")
            let ping = try lab.inClient("ping", "-n", "-c", "3", "-i", "0.2", "-w", "20", "198.51.100.7")
            #expect(unrouted.status != 0, "no route of its own: \(unrouted.output)")
            #expect(table.contains("default dev tun-firezone"), "\(table)")
            #expect(pingReplies(ping.output) >= 3, "\(ping.output)\n\(lab.logs)")
        }
    }
}
