import Foundation
import Testing
import TestSupport

/// TURN over TCP and TLS (RFC 8656 §3) on `firezone-relay`'s TCP port 3478 and TLS port 443, against independent
/// TURN clients: coturn's `turnutils_uclient -t` (and `-t -S`) relaying to `turnutils_peer`, and aioice's TURN client
/// with `transport="tcp"` (and an `ssl` context that trusts only the relay's certificate; Firezone's credentials)
/// through a channel to a UDP echo peer. tshark reads the TCP stream as STUN and ChannelData, and the TLS stream as TLS,
/// without malformed frames; a connection that sends garbage, TLS to the plain port or plain TURN to the TLS port is
/// closed and counted; the allocations go with the connections.
@Suite("firezone-relay: TURN clients over TCP and TLS (root)")
struct RelayStreamTests {
    @Test("coturn's turnutils_uclient over TCP and over TLS, 4 clients with REST API credentials, 50 datagrams each to turnutils_peer and back",
          arguments: ["tcp", "tls"])
    func turnutilsClientOverStream(transport: String) async throws {
        let outcome = try await RelayBinaryTests.withRelay(credentials: "coturn-rest-api", transport: transport) { namespace, directory in
            let peer = try RelayBinaryTests.startTurnutilsPeer(at: "127.0.0.1", in: namespace, directory: directory)
            defer { peer.terminateAndWait() }
            let flags = transport == "tls" ? ["-t", "-S", "-p", "443"] : ["-t"]
            let client = try Shell.run(["ip", "netns", "exec", namespace.name, "turnutils_uclient"] + flags + ["-c", "-W", RelayBinaryTests.secret,
                                        "-u", "alice", "-e", "127.0.0.1", "-r", "3480", "-n", "50", "-m", "4", "-l", "200", "127.0.0.1"],
                                       allowFailure: true)
            return (client.output, try RelayBinaryTests.metrics(namespace))
        }
        let (output, metrics) = outcome.result
        #expect(output.contains("tot_send_msgs=200, tot_recv_msgs=200") && output.contains("Total lost packets 0"), "\(output)\n\(outcome.log)")
        #expect(metrics["firezone_relay_relayed_datagrams_total{direction=\"to_peer\"}"] == 200, "\(metrics)")
        #expect(metrics["firezone_relay_relayed_datagrams_total{direction=\"to_client\"}"] == 200, "\(metrics)")
        // Each uclient client opens two connections (one allocation each); when they close, the allocations go too. Over
        // TLS, uclient first tries TLS 1.0 and 1.1 on some connections, which the relay refuses (TLS 1.2 at least): each
        // such attempt is a connection and a TLS failure, and the rest carry the 8 allocations.
        let accepted = metrics["firezone_relay_streams_accepted_total"] ?? -1, refused = metrics["firezone_relay_tls_failures_total"] ?? -1
        #expect(accepted - refused == 8 && (transport == "tls" || refused == 0), "\(metrics)")
        #expect(metrics["firezone_relay_allocations"] == 0 && metrics["firezone_relay_stream_clients"] == 0, "\(metrics)")
        #expect(metrics["firezone_relay_stream_framing_errors_total"] == 0, "\(metrics)")
        #expect(outcome.log.contains(transport == "tls" ? "Listening for incoming traffic on TLS port 443" : "Listening for incoming traffic on TCP port 3478"),
                "\(outcome.log)")
        #expect(outcome.log.components(separatedBy: "Freeing allocation").count - 1 == 8, "\(outcome.log)")
        #expect(outcome.status == 0 && !outcome.log.contains(" WARN ") && !outcome.log.contains(" ERROR "), "\(outcome.log)")
        #expect(outcome.packets > 200 && outcome.problems.isEmpty, "\(outcome.packets) segments; tshark: \(outcome.problems)")
    }

    @Test("aioice's TURN client over TCP and over TLS (the certificate checked) with Firezone's credentials, to the relay's IPv4 and IPv6 addresses",
          arguments: ["tcp", "tls"])
    func aioiceClientOverStream(transport: String) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/aioice_turn_client.py").path
        let outcome = try await RelayBinaryTests.withRelay(credentials: "firezone", transport: transport) { namespace, directory in
            let runs = try ["127.0.0.1", "::1"].map { relayHost in
                try Shell.run(["ip", "netns", "exec", namespace.name, "env", "TURN_TRANSPORT=\(transport)", "TURN_CA=\(directory)/cert.pem",
                               "python3", script, relayHost, transport == "tls" ? "443" : "3478", RelayBinaryTests.secret, "127.0.0.1", "20"],
                              allowFailure: true)
            }
            return (runs, try RelayBinaryTests.metrics(namespace))
        }
        let (runs, metrics) = outcome.result
        for run in runs { #expect(run.status == 0 && run.output.contains("20 of 20"), "\(run.output)\n\(outcome.log)") }
        #expect(metrics["firezone_relay_streams_accepted_total"] == 2 && metrics["firezone_relay_relayed_datagrams_total{direction=\"to_client\"}"] == 40,
                "\(metrics)")
        #expect(metrics["firezone_relay_tls_failures_total"] == 0 && metrics["firezone_relay_allocations"] == 0, "\(metrics)")
        #expect(outcome.status == 0 && !outcome.log.contains(" WARN ") && !outcome.log.contains(" ERROR "), "\(outcome.log)")
        #expect(outcome.packets >= 40 && outcome.problems.isEmpty, "\(outcome.packets) segments; tshark: \(outcome.problems)")
    }

    /// A BINDING on a stream, answered; then bytes that are not TURN: the relay closes that connection (the client sees
    /// the end of the stream), counts it, and goes on serving others.
    @Test("garbage or a TLS ClientHello on the TCP port: the connection is closed and counted, the relay serves on",
          arguments: [("garbage", "00010000" + "deadbeef" + String(repeating: "00", count: 12) + "ffff"),
                      ("TLS ClientHello", "16030100c8010000c40303" + String(repeating: "00", count: 32))])
    func garbageClosesTheStream(label: String, tail: String) async throws {
        let script = """
            import socket, sys
            binding = bytes.fromhex("000100002112a442") + bytes(range(12))
            tail = bytes.fromhex(sys.argv[1])
            with socket.create_connection(("127.0.0.1", 3478), timeout=10) as s:
                s.sendall(binding)
                answer = s.recv(4096)
                s.sendall(tail)
                rest = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk: break
                    rest += chunk
                print("answered" if answer[:2] == b"\\x01\\x01" else "unanswered", "closed", len(rest))
            with socket.create_connection(("127.0.0.1", 3478), timeout=10) as s:
                s.sendall(binding)
                print("next connection", "answered" if s.recv(4096)[:2] == b"\\x01\\x01" else "unanswered")
            """
        let outcome = try await RelayBinaryTests.withRelay(credentials: "firezone", transport: "tcp") { namespace, _ in
            let run = try Shell.run(["ip", "netns", "exec", namespace.name, "python3", "-c", script, tail], allowFailure: true)
            return (run, try RelayBinaryTests.metrics(namespace))
        }
        let (run, metrics) = outcome.result
        // The garbage's first header (a BINDING without the magic cookie) ends the stream; nothing else is answered.
        #expect(run.status == 0 && run.output.contains("answered closed 0") && run.output.contains("next connection answered"),
                "\(label): \(run.output)\n\(outcome.log)")
        #expect(metrics["firezone_relay_stream_framing_errors_total"] == 1 && metrics["firezone_relay_streams_accepted_total"] == 2, "\(metrics)")
        #expect(outcome.status == 0 && !outcome.log.contains(" WARN ") && !outcome.log.contains(" ERROR "), "\(outcome.log)")
    }

    /// A TLS client that does not trust the relay's certificate gives up in the handshake; plain TURN on the TLS port is
    /// not TLS. Both connections end, count as TLS failures, and the relay goes on.
    @Test("an untrusted certificate or plain TURN on the TLS port: the connection ends and is counted")
    func tlsFailures() async throws {
        let script = """
            import socket, ssl
            binding = bytes.fromhex("000100002112a442") + bytes(range(12))
            try:
                with socket.create_connection(("127.0.0.1", 443), timeout=10) as raw:
                    with ssl.create_default_context().wrap_socket(raw, server_hostname="relay.test") as s:
                        print("untrusted: handshake completed")
            except ssl.SSLCertVerificationError:
                print("untrusted: refused")
            with socket.create_connection(("127.0.0.1", 443), timeout=10) as s:
                s.sendall(binding)
                rest = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk: break
                    rest += chunk
                print("plain: closed after", len(rest), "bytes", "(an alert)" if rest[:1] == b"\\x15" else "")
            """
        let outcome = try await RelayBinaryTests.withRelay(credentials: "firezone", transport: "tls") { namespace, _ in
            let run = try Shell.run(["ip", "netns", "exec", namespace.name, "python3", "-c", script], allowFailure: true)
            return (run, try RelayBinaryTests.metrics(namespace))
        }
        let (run, metrics) = outcome.result
        #expect(run.status == 0 && run.output.contains("untrusted: refused") && run.output.contains("plain: closed after"),
                "\(run.output)\n\(outcome.log)")
        #expect(metrics["firezone_relay_tls_failures_total"] == 2 && metrics["firezone_relay_stream_clients"] == 0, "\(metrics)")
        #expect(outcome.status == 0 && !outcome.log.contains(" WARN ") && !outcome.log.contains(" ERROR "), "\(outcome.log)")
    }

    @Test("a certificate that cannot be used: exit 1 with a sentence naming the file")
    func unusableCertificate() async throws {
        let (status, log) = try await TestNamespace.with("rc") { namespace in
            let directory = try Binaries.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try "not a certificate".write(toFile: directory + "/cert.pem", atomically: true, encoding: .utf8)
            let relay = try Binaries.start(["firezone-relay", "--public-ip4-addr", "127.0.0.1", "--secret", "s",
                                            "--tls-certificate", directory + "/cert.pem", "--tls-private-key", directory + "/key.pem",
                                            "--health-check-addr", "127.0.0.1:8089"],
                                           in: namespace, log: directory + "/relay.log")
            return (relay.waitForExit(), try String(contentsOfFile: directory + "/relay.log", encoding: .utf8))
        }
        #expect(status == 1 && log.contains("TLS configuration: cannot use the certificate in ") && log.contains("/cert.pem"), "\(log)")
    }
}
