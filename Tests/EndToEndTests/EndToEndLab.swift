import Foundation
import Synchronization
import TestSupport

/// The whole system as processes in two namespaces joined by a veth pair (client 10.99.0.1, gateway 10.99.0.2):
/// the development portal, coturn, `firezone-gateway`, and behind the gateway a resource host on 10.77.0.5 (the
/// gateway namespace's loopback) with web servers on :80 and :8080 and dnsmasq; `firezone-client` in the other.
/// The namespaces' `/etc/netns/<name>/resolv.conf` are what `ip netns exec` shows the programs as
/// `/etc/resolv.conf`. Everything blocks: use it off the concurrency pool.
final class EndToEndLab {
    static let portalUrl = "ws://10.99.0.2:8081"
    /// The resource host's page and a larger file for checksummed transfers.
    static let page = "hello from the resource host\n"
    static let blobSize = 4 << 20

    let client: TestNamespace
    let gateway: TestNamespace
    let directory: String
    let blobSha256: String
    private var processes: [(name: String, process: Process)] = []
    private var logNames: [String] = []
    /// The log of the gateway running now (a restarted one writes a new log).
    private var gatewayLog = "gateway"

    /// A site with one gateway, alice's client, a CIDR resource (ICMP and TCP 80) and a DNS resource (TCP 80)
    /// behind it, coturn as the relay.
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
          - name: web
            type: dns
            address: web.lab.test
            ip_stack: ipv4_only
            sites: [hq]
            filters: [tcp/80]
        policies:
          - actor: alice
            resource: lab
          - actor: alice
            resource: web
        relays:
          - name: coturn
            addresses: ["10.99.0.2:3478"]
            coturn_secret: dev-turn-secret
        """

    /// The gateway's `RUST_LOG`, when not the default.
    var gatewayLogFilter: String?
    /// The gateway's environment beyond what every gateway here gets (`FIREZONE_PORTAL_API`,
    /// `FIREZONE_MAX_PARTITION_TIME`, ...).
    var gatewayEnvironment: [String: String] = [:]
    /// The client's environment beyond the portal URL, its ID and its token.
    var clientEnvironment: [String: String] = [:]

    init(config: String = EndToEndLab.config) throws {
        client = try TestNamespace("xc")
        gateway = try TestNamespace("xg")
        directory = try Binaries.scratchDirectory()
        let veth = uniqueName("fzx")
        try Shell.run("ip", "link", "add", veth, "netns", client.name, "type", "veth", "peer", "name", "eth0", "netns", gateway.name)
        _ = try client.ip("link", "set", veth, "name", "eth0")
        for (namespace, address) in [(client, "10.99.0.1/24"), (gateway, "10.99.0.2/24")] {
            _ = try namespace.ip("addr", "add", address, "dev", "eth0")
            _ = try namespace.ip("link", "set", "eth0", "up")
        }
        _ = try gateway.ip("addr", "add", "10.77.0.5/32", "dev", "lo")
        try config.write(toFile: directory + "/portal.yaml", atomically: true, encoding: .utf8)

        try FileManager.default.createDirectory(atPath: directory + "/www", withIntermediateDirectories: true)
        try Self.page.write(toFile: directory + "/www/index.html", atomically: true, encoding: .utf8)
        guard let random = FileHandle(forReadingAtPath: "/dev/urandom") else { throw ShellError.failed("open /dev/urandom", "not readable") }
        defer { try? random.close() }
        try random.readData(ofLength: Self.blobSize).write(to: URL(fileURLWithPath: directory + "/www/blob"))
        blobSha256 = try Shell.run("sha256sum", directory + "/www/blob").output.split(separator: " ").first.map(String.init) ?? ""

        // The gateway resolves DNS resources with dnsmasq; the client's system resolver is dnsmasq too. The client
        // backs resolv.conf up to /etc/resolv.conf.before-firezone: `ip netns exec` bind-mounts the namespace's
        // copy over it only when the host has that file, so an empty one stands in while the lab runs.
        try FileManager.default.createDirectory(atPath: "/etc/netns/\(gateway.name)", withIntermediateDirectories: true)
        try "nameserver 10.77.0.5\n".write(toFile: "/etc/netns/\(gateway.name)/resolv.conf", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "/etc/netns/\(client.name)", withIntermediateDirectories: true)
        try Self.clientResolvConf.write(toFile: "/etc/netns/\(client.name)/resolv.conf", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: "/etc/netns/\(client.name)/resolv.conf.before-firezone", contents: nil)
        Self.backupMountPoint.withLock { $0.enter() }
        TrafficTurns.beginShared()
    }

    private static let backupMountPoint = Mutex(BackupMountPoint())

    static let clientResolvConf = "# the client namespace's own resolver\nnameserver 10.99.0.2\noptions edns0\n"

    /// The client namespace's resolv.conf as the client left it.
    var clientResolvConfNow: String {
        (try? String(contentsOfFile: "/etc/netns/\(client.name)/resolv.conf", encoding: .utf8)) ?? "<missing>"
    }

    /// Stops every process still running (newest first), removes the namespaces and the files; with
    /// `FZ_E2E_KEEP_LOGS=<directory>` the logs are copied there first.
    func tearDown() {
        for (_, process) in processes.reversed() { process.terminateAndWait() }
        client.remove()
        gateway.remove()
        for namespace in [client, gateway] { try? FileManager.default.removeItem(atPath: "/etc/netns/\(namespace.name)") }
        Self.backupMountPoint.withLock { $0.leave() }
        TrafficTurns.endShared()
        if let keep = ProcessInfo.processInfo.environment["FZ_E2E_KEEP_LOGS"] {
            _ = try? Shell.run("sh", "-c", "mkdir -p \(keep) && cp \(directory)/*.log \(keep)/", allowFailure: true)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Everything but the client: the resource host, coturn, the portal and the gateway.
    func startInfrastructure() throws {
        try startResourceHost()
        try startCoturn()
        try startPortal()
        try startGateway()
    }

    func startResourceHost() throws {
        for port in ["80", "8080"] {
            try start("web\(port)", ["python3", "-u", "-m", "http.server", "--bind", "10.77.0.5", "--directory", directory + "/www", port],
                      in: gateway, system: true)
        }
        try start("dnsmasq", ["dnsmasq", "--no-daemon", "--log-facility=-", "--no-resolv", "--no-hosts", "--bind-interfaces",
                              "--listen-address=10.77.0.5,10.99.0.2", "--address=/web.lab.test/10.77.0.5",
                              "--address=/outside.test/10.99.0.9", "--pid-file=", "--user=root"], in: gateway, system: true)
        try waitFor("Serving HTTP", in: "web80")
        try waitFor("Serving HTTP", in: "web8080")
        try waitFor("started", in: "dnsmasq")
    }

    /// coturn on 10.99.0.2:3478; with `cli`, its telnet CLI on the gateway namespace's 127.0.0.1:5766
    /// (``cancelCoturnSessions()``).
    func startCoturn(log: String = "coturn", cli: Bool = false) throws {
        let cliArguments = cli ? ["--cli-ip=127.0.0.1", "--cli-port=5766", "--cli-password=\(Self.coturnCliPassword)"] : ["--no-cli"]
        try start(log, ["turnserver", "-n", "--listening-ip=10.99.0.2", "--listening-port=3478", "--relay-ip=10.99.0.2",
                             "--min-port=49152", "--max-port=65535", "--realm=firezone", "--use-auth-secret",
                             "--static-auth-secret=dev-turn-secret", "--fingerprint", "--no-tls", "--no-dtls",
                             "--simple-log", "--log-file=stdout"] + cliArguments, in: gateway, system: true)
    }

    static let coturnCliPassword = "lab-cli"

    /// Makes coturn drop every allocation at once through its CLI (`ps`, then `cs <id>` for each session), as
    /// coturn does on its own after a failed send to a peer; returns the session ids it cancelled.
    func cancelCoturnSessions() throws -> [String] {
        let script = """
            import re, socket, sys, time
            s = socket.create_connection(("127.0.0.1", 5766), timeout=5)
            def until_prompt():
                out = b""
                while not out.endswith(b"> ") and not out.endswith(b"password: \\r\\n"):
                    chunk = s.recv(4096)
                    if not chunk: break
                    out += chunk
                return out.decode(errors="replace")
            until_prompt()
            s.sendall(b"\(Self.coturnCliPassword)\\r\\n"); until_prompt()
            s.sendall(b"ps\\r\\n")
            ids = re.findall(r"id=(\\d+)", until_prompt())
            for i in ids:
                s.sendall(("cs " + i + "\\r\\n").encode()); until_prompt()
            print(" ".join(ids))
            """
        let result = try inGateway("python3", "-c", script)
        guard result.status == 0 else { throw ShellError.failed("coturn CLI", result.output) }
        return result.output.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    /// The lab with our relay in coturn's place, joining the portal: no relay listed, a token for relays instead;
    /// the portal mints credentials from the secret the relay sends when it joins.
    static var configWithOurRelay: String {
        config.replacingOccurrences(of: """
            relays:
              - name: coturn
                addresses: ["10.99.0.2:3478"]
                coturn_secret: dev-turn-secret
            """, with: "relay_tokens: [\(relayToken)]")
    }

    static let relayToken = "relay-token-lab"

    /// `firezone-relay` on 10.99.0.2:3478 in coturn's place, joined to the portal with a secret of its own
    /// drawing; returns once the portal sent it `init`.
    func startRelay(log: String = "relay", arguments: [String] = []) throws {
        try start(log, ["firezone-relay", "--public-ip4-addr", "10.99.0.2", "--health-check-addr", "127.0.0.1:8089"] + arguments + [Self.relayToken],
                  in: gateway, environment: ["FIREZONE_API_URL": Self.portalUrl, "FIREZONE_NAME": "lab-relay"])
        try waitFor("Connected to portal", in: log)
    }

    /// A certificate for the relay's address (10.99.0.2) in the lab's directory (`relay-cert.pem`, `relay-key.pem`);
    /// the relay's arguments for TURN over TLS with it. A client trusts it with `SSL_CERT_FILE` pointing at it.
    func relayTlsArguments() throws -> [String] {
        try Shell.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                       "-keyout", directory + "/relay-key.pem", "-out", directory + "/relay-cert.pem", "-subj", "/CN=lab-relay",
                       "-addext", "subjectAltName=IP:10.99.0.2"])
        return ["--tls-certificate", directory + "/relay-cert.pem", "--tls-private-key", directory + "/relay-key.pem"]
    }

    /// nftables in the client's namespace dropping every UDP datagram it sends on the shared link (not those into the
    /// tunnel), and with `tcpPorts` TCP to those ports too: a hotel network. ``allowClientUdp()`` lifts the UDP rule.
    func blockClientUdp(tcpPorts: [Int] = []) throws {
        let commands = ["add table inet fzudp", "add chain inet fzudp output { type filter hook output priority 0 ; }",
                        "add rule inet fzudp output oifname \"eth0\" meta l4proto udp counter drop comment \"udp\""]
            + tcpPorts.map { "add rule inet fzudp output oifname \"eth0\" tcp dport \($0) counter drop" }
        for command in commands { try Shell.run("ip", "netns", "exec", client.name, "nft", command) }
    }

    func allowClientUdp() throws {
        let listing = try Shell.run("ip", "netns", "exec", client.name, "nft", "-a", "list", "chain", "inet", "fzudp", "output").output
        guard let line = listing.split(separator: "\n").first(where: { $0.contains("comment \"udp\"") }),
              let handle = line.components(separatedBy: "# handle ").last?.trimmingCharacters(in: .whitespaces)
        else { throw ShellError.failed("the UDP rule's handle", listing) }
        try Shell.run("ip", "netns", "exec", client.name, "nft", "delete", "rule", "inet", "fzudp", "output", "handle", handle)
    }

    /// Packets the client's UDP block dropped.
    func clientUdpDropped() throws -> Int {
        Self.droppedPackets(try Shell.run("ip", "netns", "exec", client.name, "nft", "list", "table", "inet", "fzudp").output)
    }

    func startPortal(log: String = "portal") throws {
        try start(log, ["firezone-portal", "--config", directory + "/portal.yaml", "--listen", "10.99.0.2:8081",
                        "--database", directory + "/portal.sqlite"], in: gateway)
        try waitFor("listening on 10.99.0.2:8081", in: log)
    }

    func startGateway(log: String = "gateway") throws {
        var environment = ["FIREZONE_API_URL": Self.portalUrl, "FIREZONE_ID": "e2e-gateway", "HEALTH_CHECK_ADDR": "127.0.0.1:8080"]
        if let gatewayLogFilter { environment["RUST_LOG"] = gatewayLogFilter }
        environment.merge(gatewayEnvironment) { _, extra in extra }
        try start(log, ["firezone-gateway", "gateway-token-hq"], in: gateway, environment: environment)
        try waitFor("TUN device configured", in: log)
        gatewayLog = log
    }

    func startClient(_ arguments: [String] = ["--dns-control", "etc-resolv-conf"], log: String = "client") throws {
        let environment = ["FIREZONE_API_URL": Self.portalUrl, "FIREZONE_ID": "e2e-client", "FIREZONE_TOKEN": "client-token-alice"]
        try start(log, ["firezone-client"] + arguments, in: client, environment: environment.merging(clientEnvironment) { _, extra in extra })
        try waitFor("Tunnel ready", in: log)
    }

    /// Sends `signal` to the process started as `name`.
    func signal(_ name: String, _ number: Int32) {
        guard let process = processes.last(where: { $0.name == name })?.process, process.isRunning else { return }
        kill(process.processIdentifier, number)
    }

    /// SIGTERM to the process started as `name`, and its exit status.
    @discardableResult
    func stop(_ name: String) -> Int32 {
        guard let index = processes.lastIndex(where: { $0.name == name }) else { return -1 }
        return processes.remove(at: index).process.terminateAndWait()
    }

    /// nftables in the gateway's namespace drops UDP between the client and the gateway's own socket both ways,
    /// leaving only the paths through coturn.
    func dropDirectUdp() throws {
        guard let port = log(gatewayLog).split(separator: "Listening on 0.0.0.0:").last?.prefix(while: \.isNumber) else {
            throw ShellError.failed("the gateway's port", log(gatewayLog))
        }
        try nft(["add table inet fzblock",
                 "add chain inet fzblock input { type filter hook input priority 0 ; }",
                 "add chain inet fzblock output { type filter hook output priority 0 ; }",
                 "add rule inet fzblock input ip saddr 10.99.0.1 udp dport \(port) counter drop",
                 "add rule inet fzblock output ip daddr 10.99.0.1 udp sport \(port) counter drop"])
    }

    /// Loses `percent` of the packets on the gateway's veth in each direction, at random (nftables `numgen`: this
    /// kernel has no `netem` qdisc).
    func loseUnderlayPackets(percent: Int) throws {
        try nft(["add table inet fzloss",
                 "add chain inet fzloss input { type filter hook input priority -10 ; }",
                 "add chain inet fzloss output { type filter hook output priority -10 ; }",
                 "add rule inet fzloss input iifname eth0 numgen random mod 100 < \(percent) counter drop",
                 "add rule inet fzloss output oifname eth0 numgen random mod 100 < \(percent) counter drop"])
    }

    func nft(_ commands: [String]) throws {
        for command in commands { try Shell.run("ip", "netns", "exec", gateway.name, "nft", command) }
    }

    /// The sum of the packet counters of `nft list ruleset`'s drop rules.
    static func droppedPackets(_ ruleset: String) -> Int {
        ruleset.split(separator: "\n").filter { $0.contains("drop") }
            .compactMap { $0.split(separator: "packets ").last?.split(separator: " ").first.flatMap { Int($0) } }.reduce(0, +)
    }

    /// A command in the client's namespace: its status and standard output.
    func inClient(_ arguments: String...) throws -> (status: Int32, output: String) {
        try Shell.run(["ip", "netns", "exec", client.name] + arguments, allowFailure: true)
    }

    func inGateway(_ arguments: String...) throws -> (status: Int32, output: String) {
        try Shell.run(["ip", "netns", "exec", gateway.name] + arguments, allowFailure: true)
    }

    /// Pings 10.77.0.5 from the client until three replies arrive in a row or `seconds` pass: the replies.
    func pingResource(seconds: Int = 20) throws -> (replies: Int, output: String) {
        let ping = try inClient("ping", "-n", "-c", "3", "-i", "0.2", "-w", "\(seconds)", "10.77.0.5")
        return (pingReplies(ping.output), ping.output)
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(name).log", encoding: .utf8)) ?? ""
    }

    /// Every log, for a failed expectation's message.
    var logs: String {
        logNames.map { "---- \($0).log\n\(String(log($0).suffix(3000)))" }.joined(separator: "\n")
    }

    func waitFor(_ text: String, in name: String, seconds: Double = 30) throws {
        try Binaries.waitFor(text, in: "\(directory)/\(name).log", seconds: seconds)
    }

    /// The WARN and ERROR lines of the client's and gateway's logs that no pattern in `expected` explains.
    func unexpectedWarnings(expected: [String] = []) -> [String] {
        logNames.filter { $0.hasPrefix("client") || $0.hasPrefix("gateway") }.flatMap { name in
            log(name).split(separator: "\n").map(String.init).filter { line in
                (line.contains(" WARN ") || line.contains(" ERROR ")) && !expected.contains { line.contains($0) }
            }.map { "\(name): \($0)" }
        }
    }

    /// `firezone-client status --json` (or the gateway's) run in its namespace against the process started as
    /// `name` ("client" or "gateway"), decoded; and its text form.
    func status(_ name: String) throws -> (json: [String: Any], text: String) {
        let tool = name.hasPrefix("client") ? "firezone-client" : "firezone-gateway"
        let namespace = name.hasPrefix("client") ? client : gateway
        let socket = Binaries.statusSocket(forLog: "\(directory)/\(name).log")
        let json = try Shell.run("ip", "netns", "exec", namespace.name, try Binaries.path(tool), "status", "--json", "--status-socket", socket).output
        let text = try Shell.run("ip", "netns", "exec", namespace.name, try Binaries.path(tool), "status", "--status-socket", socket).output
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ShellError.failed("\(tool) status --json", json)
        }
        return (object, text)
    }

    /// The peers of a ``status(_:)`` answer.
    static func peers(_ status: [String: Any]) -> [[String: Any]] {
        status["peers"] as? [[String: Any]] ?? []
    }

    /// Starts a command in the client's namespace that runs on its own (a long ping), logging to `name`.
    func startInClient(_ name: String, _ arguments: [String]) throws {
        try start(name, arguments, in: client, system: true)
    }

    /// Starts a command in the gateway's namespace that runs on its own (a capture), logging to `name`.
    func startInGateway(_ name: String, _ arguments: [String]) throws {
        try start(name, arguments, in: gateway, system: true)
    }

    /// Waits until the process started as `name` exits; its status.
    func waitForExit(_ name: String, killAfter seconds: Double) -> Int32 {
        guard let index = processes.lastIndex(where: { $0.name == name }) else { return -1 }
        return processes.remove(at: index).process.waitForExit(killAfter: seconds)
    }

    private func start(_ name: String, _ arguments: [String], in namespace: TestNamespace, environment: [String: String] = [:],
                       system: Bool = false) throws {
        let process = try Binaries.start(arguments, in: namespace, log: "\(directory)/\(name).log", environment: environment, system: system)
        processes.append((name, process))
        if !logNames.contains(name) { logNames.append(name) }
    }
}

/// The empty `/etc/resolv.conf.before-firezone` the labs running at the same time share: created by the first
/// when the host has none, removed by the last.
struct BackupMountPoint: ~Copyable {
    static let path = "/etc/resolv.conf.before-firezone"
    private var users = 0
    private var created = false

    mutating func enter() {
        if users == 0, !FileManager.default.fileExists(atPath: Self.path) {
            created = FileManager.default.createFile(atPath: Self.path, contents: nil)
        }
        users += 1
    }

    mutating func leave() {
        users -= 1
        guard users == 0, created else { return }
        try? FileManager.default.removeItem(atPath: Self.path)
        created = false
    }
}
