import Foundation
import Testing
import TestSupport

/// Seed behaviours that only the processes show: a Goodbye on every way out (#10401), failures that read as
/// sentences, not crashes (#10290), and a download over an underlay without transmit checksum offload (#10279).
@Suite("End to end: seed behaviours of the client and gateway processes (root)")
struct EndToEndSeedTests {
    /// The portal removes the client's token and tells it `token_expired`: the client exits 1, but first says
    /// Goodbye, so the gateway drops the connection at once ("Connection removed (peer said goodbye)") instead of
    /// waiting for ICE to time out ("Connection failed (ICE timeout)").
    @Test("a client the portal disconnects (token_expired) says Goodbye on its way out; the gateway drops it at once")
    func goodbyeOnRefusal() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startInfrastructure()
            try lab.startClient(["--dns-control", "disabled"])
            let ping = try lab.pingResource()
            #expect(ping.replies >= 3, "\(ping.output)\n\(lab.logs)")
            let revoked = EndToEndLab.config.replacingOccurrences(of: "tokens: [client-token-alice]", with: "tokens: []")
            #expect(revoked != EndToEndLab.config)
            try revoked.write(toFile: lab.directory + "/portal.yaml", atomically: true, encoding: .utf8)
            lab.signal("portal", SIGHUP)
            let status = lab.waitForExit("client", killAfter: 30)
            #expect(status == 1, "\(lab.logs)")
            #expect(lab.log("client").contains("Connection closed proactively (sent goodbye)"), "\(lab.logs)")
            try lab.waitFor("Connection removed (peer said goodbye)", in: "gateway", seconds: 10)
            #expect(!lab.log("gateway").contains("Connection failed"), "\(lab.logs)")
            #expect(lab.unexpectedWarnings(expected: ["token"]).isEmpty, "\(lab.unexpectedWarnings(expected: ["token"]))\n\(lab.logs)")
        }
    }

    /// What a person sees when the portal refuses the client's token: exit status 1 and one sentence on stderr,
    /// no crash report or backtrace.
    @Test("the client with a token the portal refuses (401): exit 1, one sentence on stderr, no backtrace")
    func refusedTokenReadsAsASentence() async throws {
        let (status, stderr) = try await TestNamespace.with("ct") { namespace in
            let directory = try Binaries.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try GatewayBinaryTests.config.write(toFile: directory + "/portal.yaml", atomically: true, encoding: .utf8)
            let portal = try Binaries.start(["firezone-portal", "--config", directory + "/portal.yaml", "--listen", "127.0.0.1:8081",
                                             "--database", directory + "/portal.sqlite"], in: namespace, log: directory + "/portal.log")
            defer { portal.terminateAndWait() }
            try Binaries.waitFor("listening on 127.0.0.1:8081", in: directory + "/portal.log")
            let client = try Binaries.path("firezone-client")
            let run = try Shell.run(["ip", "netns", "exec", namespace.name, "env", "FIREZONE_API_URL=ws://127.0.0.1:8081",
                                     "FIREZONE_ID=client-test-1", "FIREZONE_TOKEN=not-a-token", "sh", "-c",
                                     "\"$0\" --dns-control disabled 2>\"$1\" >/dev/null", client, directory + "/stderr"],
                                    allowFailure: true)
            return (run.status, (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? "<missing>")
        }
        #expect(status == 1, "\(stderr)")
        let lines = stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(stderr)")
        #expect(stderr.localizedCaseInsensitiveContains("token"), "says what is wrong: \(stderr)")
        for crash in ["Fatal error", "Stack dump", "backtrace", "Crash", "0x0000"] {
            #expect(!stderr.contains(crash), "no crash report: \(stderr)")
        }
    }

    /// Firezone #10279 is about kernels that refuse a segmented send (EIO) when the device has no transmit checksum
    /// offload. Since Linux 6.11 the kernel checksums such sends in software, so here the underlay with `tx off`
    /// shows that nothing is lost from the tunnel on such a device; the fallback itself, with a refusal the kernel
    /// really makes, is `UdpSocketTests.segmentationRefused`.
    @Test("with transmit checksum offload off on the underlay, a 4 MiB download arrives intact and no datagram is lost")
    func checksumOffloadOff() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            for namespace in [lab.client, lab.gateway] {
                try Shell.run("ip", "netns", "exec", namespace.name, "ethtool", "-K", "eth0", "tx", "off")
            }
            try lab.startInfrastructure()
            try lab.startClient()
            let download = try lab.inClient("sh", "-c", #"curl -sS --max-time 120 -o "$0" http://web.lab.test/blob && sha256sum "$0""#,
                                            lab.directory + "/download")
            #expect(download.output.hasPrefix(lab.blobSha256), "\(download)\n\(lab.logs)")
            let metrics = try lab.inGateway("curl", "-sS", "--max-time", "10", "http://127.0.0.1:8080/metrics").output
            let value = { (name: String) in
                metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
            }
            #expect((value("firezone_gateway_datagrams_sent_total") ?? 0) > 3000, "\(metrics)")
            #expect(value("firezone_gateway_send_failures_total") == 0, "\(metrics)")
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())\n\(lab.logs)")
        }
    }

    /// Seed #10347: the event loop takes what is ready from every source in turn, and a bad datagram is counted and
    /// skipped without aborting its batch. A flood of garbage at the gateway's UDP socket (random bytes, STUN and
    /// ChannelData look-alikes, WireGuard data for unknown sessions), about 25,000 a second, runs while pings cross the
    /// tunnel.
    @Test("a UDP socket flooded with garbage: pings through the tunnel still pass, the garbage is counted")
    func floodedSocketStaysFair() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startInfrastructure()
            try lab.startClient(["--dns-control", "disabled"])
            #expect(try lab.pingResource().replies >= 3, "\(lab.logs)")
            try lab.startInClient("flood", ["python3", "-c", Self.flood, "10.99.0.2", "52625", "12"])
            try lab.waitFor("flooding", in: "flood")
            let ping = try lab.inClient("ping", "-n", "-c", "40", "-i", "0.2", "-w", "30", "10.77.0.5")
            let sent = lab.waitForExit("flood", killAfter: 30)
            let metrics = try lab.inGateway("curl", "-sS", "--max-time", "10", "http://127.0.0.1:8080/metrics").output
            let value = { (name: String) in
                metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) } ?? 0
            }
            #expect(sent == 0, "\(lab.log("flood"))")
            #expect(pingReplies(ping.output) >= 38, "\(ping.output)\n\(lab.log("flood"))")
            let counted = value("firezone_gateway_refused_total") + value("firezone_gateway_unmatched_stun_messages_total")
            #expect(counted >= 100_000, "the garbage is counted: \(metrics)\n\(lab.log("flood"))")
            #expect(lab.log("gateway").contains("Listening on 0.0.0.0:52625"), "Firezone's listen port: \(lab.logs)")
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())")
            print("flood: \(lab.log("flood").split(separator: "\n").last ?? ""), counted \(Int(counted)), ping \(pingReplies(ping.output)) of 40")
        }
    }

    /// Garbage datagrams for `seconds` to `host port`: random bytes, STUN and ChannelData look-alikes, and
    /// WireGuard data messages for session indices nobody has; prints how many it sent.
    static let flood = #"""
        import os, random, socket, struct, sys, time
        host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        kinds = [
            lambda: os.urandom(random.randint(1, 1400)),
            lambda: b"\x00\x01" + struct.pack("!H", random.randint(0, 1400)) + b"\x21\x12\xa4\x42" + os.urandom(random.randint(0, 200)),
            lambda: bytes([0x40 + random.randint(0, 15), random.randint(0, 255)]) + struct.pack("!H", random.randint(0, 1400)) + os.urandom(random.randint(0, 200)),
            lambda: struct.pack("<II", 4, random.getrandbits(32)) + os.urandom(8 + random.randint(16, 1300)),
        ]
        print("flooding", flush=True)
        sent, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(256):
                try:
                    sock.sendto(random.choice(kinds)(), (host, port))
                    sent += 1
                except OSError:
                    pass
            # About 25,000 a second: a flood for the gateway's socket without starving the tests beside it.
            time.sleep(0.01)
        print("sent", sent, flush=True)
        """#
}
