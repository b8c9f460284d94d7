import Foundation
import Testing
import TestSupport

/// `firezone-gateway` as a process in a namespace of its own, against the development portal: it joins, configures
/// its TUN device from `init`, masquerades the tunnel ranges, answers the health check, and on SIGTERM says goodbye,
/// removes the device and its nftables table and exits 0.
@Suite("firezone-gateway: against the development portal in a namespace (root)")
struct GatewayBinaryTests {
    static let config = """
        account_slug: dev
        upstream_dns: [1.1.1.1]
        sites:
          - name: hq
            gateway_tokens: [gateway-token-hq]
        resources:
          - name: lab
            type: cidr
            address: 10.77.0.0/24
            sites: [hq]
        relays:
          - name: coturn
            addresses: ["127.0.0.1:3478"]
            coturn_secret: dev-turn-secret
        """

    @Test("joins, configures the TUN device from init, answers /healthz, and exits 0 on SIGTERM without leftovers")
    func joinsServesAndStops() async throws {
        let outcome = try await TestNamespace.with("gw") { namespace in
            let directory = try Binaries.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.config.write(toFile: directory + "/portal.yaml", atomically: true, encoding: .utf8)
            let portal = try Binaries.start(["firezone-portal", "--config", directory + "/portal.yaml", "--listen", "127.0.0.1:8081",
                                             "--database", directory + "/portal.sqlite"], in: namespace, log: directory + "/portal.log")
            defer { portal.terminateAndWait() }
            try Binaries.waitFor("listening on 127.0.0.1:8081", in: directory + "/portal.log")
            let gateway = try Binaries.start(["firezone-gateway", "gateway-token-hq"], in: namespace, log: directory + "/gateway.log",
                                             environment: ["FIREZONE_API_URL": "ws://127.0.0.1:8081", "FIREZONE_ID": "gateway-test-1",
                                                           "HEALTH_CHECK_ADDR": "127.0.0.1:8080", "FIREZONE_NAME": "gw-test"])
            try Binaries.waitFor("TUN device configured", in: directory + "/gateway.log")
            let addresses = try namespace.ip("addr", "show", "dev", "tun-firezone")
            let routes = try namespace.ip("route", "show", "dev", "tun-firezone")
            let health = try Shell.run("ip", "netns", "exec", namespace.name, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                       "http://127.0.0.1:8080/healthz").output
            let nat = try Shell.run("ip", "netns", "exec", namespace.name, "nft", "list", "table", "inet", "firezone-gateway").output
            let status = gateway.terminateAndWait()
            let log = try String(contentsOfFile: directory + "/gateway.log", encoding: .utf8)
            let after = try namespace.ip("link", "show")
            let natAfter = try Shell.run("ip", "netns", "exec", namespace.name, "nft", "list", "tables").output
            return (addresses, routes, health, status, log, after + natAfter, nat)
        }
        let (addresses, routes, health, status, log, after, nat) = outcome
        #expect(nat.contains("ip saddr 100.64.0.0/11 oifname != \"tun-firezone\" masquerade"), "\(nat)")
        #expect(nat.contains("ip6 saddr fd00:2021:1111::/107 oifname != \"tun-firezone\" masquerade"), "\(nat)")
        #expect(addresses.contains("inet 100.") && addresses.contains("inet6 fd00:2021:1111:"), "\(addresses)")
        #expect(routes.contains("100.64.0.0/11"), "\(routes)")
        #expect(health == "200")
        #expect(log.contains("INFO firezone_gateway: Connected to portal"), "\(log)")
        #expect(log.contains("INFO firezone_gateway: Received SIGTERM") && log.contains("INFO firezone_gateway: Goodbye!"), "\(log)")
        #expect(status == 0, "exit status after SIGTERM")
        #expect(!after.contains("tun-firezone") && !after.contains("firezone-gateway"), "the TUN device and the nftables table are gone: \(after)")
    }

    @Test("a token the portal refuses is fatal: exit 1 with Firezone's sentence; no token at all: exit 1 on stderr; a key log it cannot open: exit 1")
    func refusedAndMissingTokens() async throws {
        let (refused, missing, usage, keyLog) = try await TestNamespace.with("gt") { namespace in
            let directory = try Binaries.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.config.write(toFile: directory + "/portal.yaml", atomically: true, encoding: .utf8)
            let portal = try Binaries.start(["firezone-portal", "--config", directory + "/portal.yaml", "--listen", "127.0.0.1:8081",
                                             "--database", directory + "/portal.sqlite"], in: namespace, log: directory + "/portal.log")
            defer { portal.terminateAndWait() }
            try Binaries.waitFor("listening on 127.0.0.1:8081", in: directory + "/portal.log")
            let gateway = try Binaries.start(["firezone-gateway", "not-a-token", "--health-check-addr", "127.0.0.1:8082"], in: namespace,
                                             log: directory + "/refused.log", environment: ["FIREZONE_API_URL": "ws://127.0.0.1:8081",
                                                                                            "FIREZONE_ID": "gateway-test-2"])
            let refused = (gateway.waitForExit(), try String(contentsOfFile: directory + "/refused.log", encoding: .utf8))
            let noToken = try Binaries.start(["firezone-gateway"], in: namespace, log: directory + "/missing.log", environment: [:])
            let missing = (noToken.waitForExit(), try String(contentsOfFile: directory + "/missing.log", encoding: .utf8))
            let badFlag = try Binaries.start(["firezone-gateway", "--no-such-flag"], in: namespace, log: directory + "/usage.log")
            let unopenable = try Binaries.start(["firezone-gateway", "gateway-token-hq", "--health-check-addr", "127.0.0.1:8083"], in: namespace,
                                                log: directory + "/keylog.log",
                                                environment: ["FIREZONE_API_URL": "ws://127.0.0.1:8081", "FIREZONE_ID": "gateway-test-3",
                                                              "WGKEYLOGFILE": "/nonexistent/dir/keys"])
            let keyLog = (unopenable.waitForExit(), try String(contentsOfFile: directory + "/keylog.log", encoding: .utf8))
            return (refused, missing, badFlag.waitForExit(), keyLog)
        }
        #expect(keyLog.0 == 1, "\(keyLog.1)")
        #expect(keyLog.1.contains("cannot open the key log /nonexistent/dir/keys"), "\(keyLog.1)")
        #expect(refused.0 == 1, "\(refused.1)")
        #expect(refused.1.contains("INFO firezone_gateway: Failed to start Gateway:"), "\(refused.1)")
        #expect(missing.0 == 1)
        #expect(missing.1.contains("Failed to read `FIREZONE_TOKEN` systemd credential"), "\(missing.1)")
        #expect(usage == 64)
    }

    @Test("`status` without a running process: exit 1 and the reason on stderr; a bad flag: exit 64", arguments: ["firezone-gateway", "firezone-client"])
    func statusWithoutAProcess(tool: String) throws {
        let directory = try Binaries.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = try Self.runCapturingStderr([try Binaries.path(tool), "status", "--status-socket", directory + "/none.sock"])
        #expect(missing.status == 1 && missing.stderr.contains("\(tool) status: nothing serves the status socket \(directory)/none.sock"),
                "\(missing)")
        let usage = try Self.runCapturingStderr([try Binaries.path(tool), "status", "--no-such-flag"])
        #expect(usage.status == 64, "\(usage)")
    }

    static func runCapturingStderr(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// The package's built executables as child processes in a namespace, started through Python with an empty
/// signal mask (Foundation starts children with every signal blocked, and SIGTERM must reach them).
enum Binaries {
    static func path(_ name: String) throws -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/\(name)").path,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ShellError.failed(name, "not built (swift build --build-tests builds it)")
        }
        return found
    }

    private static let unblockAndExec =
        "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv(sys.argv[1], sys.argv[1:])"

    /// For programs of the system: Python stays as the parent, forwards SIGTERM and SIGINT and exits with the
    /// child's status. Foundation learns that a child ended when the child's copy of a socket it inherited
    /// closes, then waits for it without a timeout on its one monitoring thread; dnsmasq closes every inherited
    /// descriptor at startup, and that thread would wait on it for ever, leaving every later child unreaped.
    private static let supervisor = """
        import os, signal, sys
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        child = os.fork()
        if child == 0:
            os.execv(sys.argv[1], sys.argv[1:])
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda received, frame: os.kill(child, received))
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status) % 256)
        """

    /// A program installed on the system (`/usr/bin`, `/usr/sbin`, ...).
    static func systemPath(_ name: String) throws -> String {
        let directories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        guard let found = directories.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ShellError.failed(name, "not installed (scripts/bootstrap installs it)")
        }
        return found
    }

    static func scratchDirectory() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fz-binaries-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Starts `arguments[0]` (a built executable) in `namespace`, stdout and stderr into `log`.
    /// `system` runs a program from `PATH` instead of one of ours.
    static func start(_ arguments: [String], in namespace: TestNamespace, log: String, environment: [String: String] = [:],
                      system: Bool = false) throws -> Process {
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw ShellError.failed("create \(log)", "") }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace.name, "python3", "-c", system ? supervisor : unblockAndExec,
                             system ? try systemPath(arguments[0]) : try path(arguments[0])] + arguments.dropFirst()
        var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FIREZONE_") && $0.key != "HEALTH_CHECK_ADDR" && $0.key != "WGKEYLOGFILE" }
        merged.merge(environment) { _, new in new }
        if !system, merged["FIREZONE_STATUS_SOCKET"] == nil { merged["FIREZONE_STATUS_SOCKET"] = statusSocket(forLog: log) }
        process.environment = merged
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return process
    }

    /// Where a client or gateway started with this log serves its status: next to the log, so that the processes
    /// of labs running at the same time never share one.
    static func statusSocket(forLog log: String) -> String {
        (log.hasSuffix(".log") ? String(log.dropLast(4)) : log) + ".status.sock"
    }

    /// Waits until `file` contains `text` (up to `seconds`).
    static func waitFor(_ text: String, in file: String, seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let contents = try? String(contentsOfFile: file, encoding: .utf8), contents.contains(text) { return }
            usleep(20_000)
        }
        let contents = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        throw ShellError.failed("waiting for '\(text)'", String(contents.suffix(2000)))
    }
}

extension Process {
    /// SIGTERM, then the exit status (SIGKILL after 10 s).
    @discardableResult
    func terminateAndWait() -> Int32 {
        if isRunning { kill(processIdentifier, SIGTERM) }
        return waitForExit(killAfter: 10)
    }

    /// The exit status, waiting up to `killAfter` seconds before SIGKILL.
    func waitForExit(killAfter seconds: Double = 30) -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning, Date() < deadline { usleep(10_000) }
        if isRunning { kill(processIdentifier, SIGKILL) }
        waitUntilExit()
        return terminationStatus
    }
}
