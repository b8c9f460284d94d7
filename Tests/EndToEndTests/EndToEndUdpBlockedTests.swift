import Foundation
import Testing
import TestSupport

/// A network that blocks UDP (a hotel's, a campus's): nftables in the client's namespace drops every UDP datagram
/// the client sends on the link, and in the second test TCP to the relay's port 3478 too. The client reaches the
/// resources through `firezone-relay` over TCP, then over TLS on 443 (the relay's certificate names its address; the
/// client trusts it through `SSL_CERT_FILE`), the relay's side towards the gateway staying UDP. Downloads are
/// checksummed. When UDP comes back, the client moves to a UDP path while a download runs, and the download completes.
@Suite("End to end: networks that block UDP (root)")
struct EndToEndUdpBlockedTests {
    static let bigBlobSize = 16 << 20

    /// The lab with our relay listening on TCP and TLS, 16 MiB to download, the client trusting the relay's certificate.
    static func lab() throws -> (EndToEndLab, sha256: String) {
        let lab = try EndToEndLab(config: EndToEndLab.configWithOurRelay)
        guard let random = FileHandle(forReadingAtPath: "/dev/urandom") else { throw ShellError.failed("open /dev/urandom", "not readable") }
        defer { try? random.close() }
        try random.readData(ofLength: bigBlobSize).write(to: URL(fileURLWithPath: lab.directory + "/www/blob16"))
        let sha256 = try Shell.run("sha256sum", lab.directory + "/www/blob16").output.split(separator: " ").first.map(String.init) ?? ""
        try lab.startResourceHost()
        try lab.startPortal()
        try lab.startRelay(arguments: try lab.relayTlsArguments())
        try lab.startGateway()
        lab.clientEnvironment = ["SSL_CERT_FILE": lab.directory + "/relay-cert.pem"]
        return (lab, sha256)
    }

    /// Blocks the client's UDP (and TCP to `blockingTcpPorts`), starts the client, and checks the CIDR resource answers
    /// pings and gives the 16 MiB intact (into `download`), and the DNS resource its page (the name resolved by the
    /// client's own resolver, which needs no UDP on the link).
    static func reachResources(_ lab: EndToEndLab, sha256: String, blockingTcpPorts: [Int], download name: String) throws {
        try lab.blockClientUdp(tcpPorts: blockingTcpPorts)
        try lab.startClient()
        let ping = try lab.pingResource(seconds: 90)
        #expect(ping.replies >= 3, "\(ping.output)\n\(lab.logs)")
        let page = try lab.inClient("curl", "-sS", "--max-time", "30", "http://web.lab.test/")
        #expect(page.output == EndToEndLab.page, "the DNS resource: \(page.output)\n\(lab.logs)")
        let download = try lab.inClient("sh", "-c", #"curl -sS --max-time 180 -o "$0" http://10.77.0.5/blob16 && sha256sum "$0""#,
                                        lab.directory + "/" + name).output
        #expect(download.hasPrefix(sha256), "\(download)\n\(lab.logs)")
    }

    @Test("UDP blocked: through the relay over TCP (ping, 16 MiB checksummed); UDP back: a UDP path within a minute, a running download intact")
    func overTcpAndBack() async throws {
        try await offPool {
            let (lab, sha256) = try Self.lab()
            defer { lab.tearDown() }
            try Self.reachResources(lab, sha256: sha256, blockingTcpPorts: [], download: "over-tcp")
            let client = lab.log("client")
            #expect(client.contains("Relay unreachable over udp; trying tcp") && client.contains("Connected to relay over tcp")
                    && client.contains("transport=tcp"), "the log says which transport: \(client)")
            #expect(!client.contains("trying tls"), "TCP worked: \(client)")
            #expect(try lab.clientUdpDropped() > 0, "the client tried UDP")
            let status = try lab.status("client")
            #expect(status.text.contains(":3478 over tcp, allocated"), "the status view names the transport: \(status.text)")
            let relayMetrics = try lab.inGateway("curl", "-sS", "--max-time", "10", "http://127.0.0.1:8089/metrics").output
            #expect(relayMetrics.contains("firezone_relay_stream_clients 1"), "\(relayMetrics)")

            // UDP comes back while a slow download runs: the relay answers the client's next UDP probe, the allocation
            // moves to UDP and the connection with it; the download goes on and completes intact.
            try lab.startInClient("slow-download", ["sh", "-c", #"curl -sS --max-time 170 --limit-rate 200k -o "$0" http://10.77.0.5/blob16 && sha256sum "$0""#,
                                                    lab.directory + "/while-moving"])
            let started = Date().addingTimeInterval(30)
            while Date() < started, ((try? FileManager.default.attributesOfItem(atPath: lab.directory + "/while-moving")[.size] as? Int) ?? 0) < 1 << 20 {
                usleep(50_000)
            }
            let unblocked = Date()
            try lab.allowClientUdp()
            try lab.waitFor("Relay reachable over UDP again", in: "client", seconds: 60)
            let movedAt = (try? FileManager.default.attributesOfItem(atPath: lab.directory + "/while-moving")[.size] as? Int) ?? 0
            print("udp back: moved after \(Date().timeIntervalSince(unblocked)) s, \(movedAt) bytes into the download")
            #expect(movedAt < Self.bigBlobSize, "the move happened while the download ran")
            #expect(lab.waitForExit("slow-download", killAfter: 180) == 0, "\(lab.log("slow-download"))\n\(lab.logs)")
            #expect(lab.log("slow-download").hasPrefix(sha256), "\(lab.log("slow-download"))")
            let after = lab.log("client")
            #expect(after.contains("Disconnected from relay over tcp"), "the stream closed once unused: \(after)")
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())\n\(lab.logs)")
        }
    }

    @Test("UDP and TCP to port 3478 blocked: through the relay over TLS on 443, the certificate checked; 16 MiB checksummed")
    func overTls() async throws {
        try await offPool {
            let (lab, sha256) = try Self.lab()
            defer { lab.tearDown() }
            try Self.reachResources(lab, sha256: sha256, blockingTcpPorts: [3478], download: "over-tls")
            let client = lab.log("client")
            #expect(client.contains("Relay unreachable over udp; trying tcp") && client.contains("Relay unreachable over tcp; trying tls")
                    && client.contains("Connected to relay over tls") && client.contains("transport=tls"), "\(client)")
            #expect(try lab.status("client").text.contains("10.99.0.2:443 over tls"))
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())\n\(lab.logs)")
        }
    }
}
