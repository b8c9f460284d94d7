import Foundation
import Testing
import TestSupport

/// `firezone-relay` as a process in a namespace, against independent TURN clients: coturn's `turnutils_uclient`
/// (REST API credentials, RFC 5766 channels) relaying to `turnutils_peer`, and aioice's TURN client (Firezone's
/// credentials, derived in Python) through a channel to a UDP echo peer, over IPv4 and IPv6. tshark decodes what the
/// relay sent without malformed packets or expert errors; SIGTERM ends it with 0.
@Suite("firezone-relay: independent TURN clients against our relay (root)")
struct RelayBinaryTests {
    static let secret = "relay-test-secret"

    /// Starts the relay on loopback (IPv4 and IPv6) with `credentials`, and tcpdump on its port; the body gets the
    /// namespace and the directory; returns the body's result, the relay's exit status and log, and what tshark
    /// found wrong.
    /// `transport` is what tcpdump captures and tshark checks: "udp" or "tcp" on port 3478, or "tls" on port 443 (the
    /// relay then presents a certificate for 127.0.0.1 and ::1 made in the directory: `cert.pem`, `key.pem`).
    static func withRelay<Result: Sendable>(credentials: String, transport: String = "udp",
                                            _ body: @escaping @Sendable (TestNamespace, String) throws -> Result)
        async throws -> (result: Result, status: Int32, log: String, problems: String, packets: Int) {
        try await TestNamespace.with("rl") { namespace in
            let directory = try Binaries.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (layer, port, dissector) = transport == "tls" ? ("tcp", 443, "tls") : (transport, 3478, "stun")
            var tlsArguments: [String] = []
            if transport == "tls" {
                _ = try Shell.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                               "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem", "-subj", "/CN=relay.test",
                               "-addext", "subjectAltName=DNS:relay.test,IP:127.0.0.1,IP:::1"])
                tlsArguments = ["--tls-certificate", directory + "/cert.pem", "--tls-private-key", directory + "/key.pem"]
            }
            let capture = try Binaries.start(["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", directory + "/relay.pcap", "\(layer) port \(port)"],
                                             in: namespace, log: directory + "/tcpdump.log", system: true)
            try Binaries.waitFor("listening on", in: directory + "/tcpdump.log")
            let relay = try Binaries.start(["firezone-relay", "--public-ip4-addr", "127.0.0.1", "--public-ip6-addr", "::1",
                                            "--lowest-port", "50000", "--highest-port", "50999", "--credentials", credentials,
                                            "--health-check-addr", "127.0.0.1:8089"] + tlsArguments,
                                           in: namespace, log: directory + "/relay.log", environment: ["FIREZONE_RELAY_SECRET": secret])
            try Binaries.waitFor("Listening for incoming traffic on UDP port 3478", in: directory + "/relay.log")
            let result = try body(namespace, directory)
            let status = relay.terminateAndWait()
            capture.terminateAndWait()
            let log = (try? String(contentsOfFile: directory + "/relay.log", encoding: .utf8)) ?? ""
            let problems = try Shell.run("tshark", "-r", directory + "/relay.pcap", "-d", "\(layer).port==\(port),\(dissector)",
                                         "-Y", "\(layer).srcport == \(port) && (_ws.malformed || _ws.expert.severity >= error)").output
            // Over TCP, the segments that carry STUN or ChannelData, or TLS records (not the bare acknowledgements).
            let packets = try Shell.run("tshark", "-r", directory + "/relay.pcap", "-d", "\(layer).port==\(port),\(dissector)",
                                        "-Y", transport == "udp" ? "udp.srcport == 3478" : "tcp.srcport == \(port) && \(dissector)").output
                .split(separator: "\n").count
            return (result, status, log, problems, packets)
        }
    }

    /// coturn's `turnutils_peer` (a UDP echo) on port 3480, once its socket exists: it says nothing when it is ready,
    /// and on a loaded machine the first datagrams would otherwise meet a closed port and count as lost.
    static func startTurnutilsPeer(at address: String, in namespace: TestNamespace, directory: String) throws -> Process {
        let peer = try Binaries.start(["turnutils_peer", "-L", address, "-p", "3480"], in: namespace, log: directory + "/peer.log", system: true)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline,
              !(try Shell.run("ip", "netns", "exec", namespace.name, "ss", "-Hlun", "sport = :3480").output.contains("3480")) {
            usleep(20_000)
        }
        return peer
    }

    static func metrics(_ namespace: TestNamespace) throws -> [String: Double] {
        let text = try Shell.run("ip", "netns", "exec", namespace.name, "curl", "-sS", "--max-time", "10", "http://127.0.0.1:8089/metrics").output
        return Dictionary(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            let parts = line.split(separator: " ")
            return parts.count == 2 ? (String(parts[0]), Double(parts[1]) ?? -1) : nil
        }, uniquingKeysWith: { first, _ in first })
    }

    /// An IPv4 relayed address to an IPv4 peer, or (`-x`, RFC 6156's REQUESTED-ADDRESS-FAMILY) an IPv6 one to an
    /// IPv6 peer, the client reaching the relay over IPv4 either way.
    @Test("coturn's turnutils_uclient, 4 clients with REST API credentials, 50 datagrams each to turnutils_peer and back",
          arguments: [(peer: "127.0.0.1", flags: [String]()), (peer: "::1", flags: ["-x"])])
    func turnutilsClient(peer peerAddress: String, flags: [String]) async throws {
        let outcome = try await Self.withRelay(credentials: "coturn-rest-api") { namespace, directory in
            let peer = try Self.startTurnutilsPeer(at: peerAddress, in: namespace, directory: directory)
            defer { peer.terminateAndWait() }
            // -c: no RTCP pair (its RESERVATION-TOKEN is not implemented, as in Firezone's relay).
            let client = try Shell.run(["ip", "netns", "exec", namespace.name, "turnutils_uclient", "-c", "-W", Self.secret, "-u", "alice"]
                                       + flags + ["-e", peerAddress, "-r", "3480", "-n", "50", "-m", "4", "-l", "200", "127.0.0.1"],
                                       allowFailure: true)
            return (client.output, try Self.metrics(namespace))
        }
        let (output, metrics) = outcome.result
        let diagnosis = ["to_peer", "to_client"].map { "\($0): \(metrics["firezone_relay_relayed_datagrams_total{direction=\"\($0)\"}"] ?? -1)" }
            + ["dropped: \(metrics["firezone_relay_dropped_datagrams_total"] ?? -1)", "send failures: \(metrics["firezone_relay_send_failures_total"] ?? -1)"]
        #expect(output.contains("tot_send_msgs=200, tot_recv_msgs=200") && output.contains("Total lost packets 0"),
                "\(diagnosis)\n\(output)\n\(outcome.log)")
        #expect(metrics["firezone_relay_relayed_datagrams_total{direction=\"to_peer\"}"] == 200, "\(metrics)")
        #expect(metrics["firezone_relay_relayed_datagrams_total{direction=\"to_client\"}"] == 200, "\(metrics)")
        // Each uclient client holds two allocations and deletes the one with its channels when it is done.
        #expect(metrics["firezone_relay_allocations"] == 4 && metrics["firezone_relay_channels"] == 0, "\(metrics)")
        #expect(outcome.log.components(separatedBy: "Freeing allocation").count - 1 >= 4, "\(outcome.log)")
        let family = flags.contains("-x") ? "family=IPv6" : "family=IPv4"
        #expect(outcome.log.components(separatedBy: family).count - 1 >= 4, "every allocation of the \(family) kind: \(outcome.log)")
        #expect(outcome.status == 0 && outcome.log.contains("INFO firezone_relay: Goodbye!"), "\(outcome.log)")
        #expect(!outcome.log.contains(" WARN ") && !outcome.log.contains(" ERROR "), "\(outcome.log)")
        #expect(outcome.packets > 200 && outcome.problems.isEmpty, "\(outcome.packets) packets; tshark: \(outcome.problems)")
    }

    @Test("aioice's TURN client with Firezone's credentials, from IPv4 and from IPv6, through a channel to an echo peer")
    func aioiceClient() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/aioice_turn_client.py").path
        let outcome = try await Self.withRelay(credentials: "firezone") { namespace, _ in
            try ["127.0.0.1", "::1"].map { relayHost in
                try Shell.run(["ip", "netns", "exec", namespace.name, "python3", script, relayHost, "3478", Self.secret, "127.0.0.1", "20"],
                              allowFailure: true)
            }
        }
        for run in outcome.result {
            #expect(run.status == 0 && run.output.contains("20 of 20"), "\(run.output)\n\(outcome.log)")
        }
        #expect(outcome.log.contains("Created allocation") && outcome.log.contains("Freeing allocation"), "\(outcome.log)")
        #expect(outcome.status == 0 && !outcome.log.contains(" ERROR "), "\(outcome.log)")
        #expect(outcome.packets >= 20 && outcome.problems.isEmpty, "\(outcome.packets) packets captured; tshark: \(outcome.problems)")
    }

    @Test("bad usage: no public address or no secret is one sentence on stderr and exit 1")
    func refusesWithoutAddressOrSecret() async throws {
        let (noAddress, noSecret) = try await TestNamespace.with("rb") { namespace in
            let directory = try Binaries.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let first = try Binaries.start(["firezone-relay", "--secret", "x"], in: namespace, log: directory + "/a.log")
            let second = try Binaries.start(["firezone-relay", "--public-ip4-addr", "127.0.0.1"], in: namespace, log: directory + "/b.log")
            return ((first.waitForExit(), try String(contentsOfFile: directory + "/a.log", encoding: .utf8)),
                    (second.waitForExit(), try String(contentsOfFile: directory + "/b.log", encoding: .utf8)))
        }
        #expect(noAddress.0 == 1 && noAddress.1.hasPrefix("missing --public-ip4-addr or --public-ip6-addr"), "\(noAddress.1)")
        #expect(noSecret.0 == 1 && noSecret.1.hasPrefix("missing a portal token (FIREZONE_TOKEN) or --secret (FIREZONE_RELAY_SECRET)"),
                "\(noSecret.1)")
    }
}
