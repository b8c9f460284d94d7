import Foundation
import TestSupport
import Testing

/// Our WireGuard engine (in `WireGuardInteropPeer`, on a real TUN and UDP socket in namespace B) against
/// Debian's wireguard-go (in namespace A, configured with `wg`). Tunnel addresses: A 100.64.1.1, B 100.64.1.2.
@Suite(.serialized, .offPool) struct WireGuardGoInteropTests {
    struct Keys {
        var privateA: String
        var publicA: String
        var privateB: String
        var publicB: String
        var presharedA: String
        var presharedB: String
    }

    struct Setup {
        var peerInitiates = true
        var wrongPresharedKey = false
        var wrongPeerKeyForUs = false
        var capture: String?
    }

    /// Brings up wireguard-go in A and our peer in B; returns the lab (to tear down) and our peer's process.
    func bringUp(_ lab: NetnsLab, _ setup: Setup) throws -> Process {
        let keys = try generateKeys(lab, wrongPresharedKey: setup.wrongPresharedKey)
        try lab.write(keys.privateA, to: "a.key")
        try lab.write(keys.privateB, to: "b.key")
        try lab.write(keys.presharedA, to: "a.psk")
        try lab.write(keys.presharedB, to: "b.psk")
        if let capture = setup.capture {
            try lab.start(["ip", "netns", "exec", lab.namespaceB, "tcpdump", "-i", lab.interfaceB, "--immediate-mode",
                           "-U", "-w", lab.path(capture), "udp"], log: "tcpdump.log")
            try lab.waitUntil("tcpdump to listen") { lab.log("tcpdump.log").contains("listening on") }
        }

        let wgInterface = "fz\(lab.name)A0"
        try lab.start(["ip", "netns", "exec", lab.namespaceA, "wireguard-go", "-f", wgInterface], log: "wireguard-go.log")
        try lab.waitUntil("wireguard-go's interface") {
            try lab.run("ip", "-n", lab.namespaceA, "link", "show", wgInterface, allowFailure: true).status == 0
        }
        try lab.run("ip", "netns", "exec", lab.namespaceA, "wg", "set", wgInterface, "private-key", lab.path("a.key"),
                    "listen-port", "51820", "peer", keys.publicB, "preshared-key", lab.path("a.psk"),
                    "endpoint", "10.98.0.2:51821", "allowed-ips", "100.64.1.2/32")
        try lab.run("ip", "-n", lab.namespaceA, "addr", "add", "100.64.1.1/32", "dev", wgInterface)
        try lab.run("ip", "-n", lab.namespaceA, "link", "set", wgInterface, "mtu", "1280", "up")
        try lab.run("ip", "-n", lab.namespaceA, "route", "add", "100.64.1.2/32", "dev", wgInterface)

        let ourInterface = "fz\(lab.name)B0"
        let peerKey = setup.wrongPeerKeyForUs ? try lab.run("sh", "-c", "wg genkey | wg pubkey").output : keys.publicA
        var arguments = ["ip", "netns", "exec", lab.namespaceB, try peerExecutable(),
                         "--tun", ourInterface, "--listen-port", "51821", "--private-key-file", lab.path("b.key"),
                         "--peer-public-key", peerKey.trimmingCharacters(in: .whitespacesAndNewlines),
                         "--preshared-key-file", lab.path("b.psk")]
        if setup.peerInitiates { arguments += ["--endpoint", "10.98.0.1:51820"] }
        let peer = try lab.start(arguments, log: "peer.log")
        try lab.waitUntil("our peer to be ready") { lab.log("peer.log").contains("ready") }
        try lab.run("ip", "-n", lab.namespaceB, "addr", "add", "100.64.1.2/32", "dev", ourInterface)
        try lab.run("ip", "-n", lab.namespaceB, "link", "set", ourInterface, "mtu", "1280", "up")
        try lab.run("ip", "-n", lab.namespaceB, "route", "add", "100.64.1.1/32", "dev", ourInterface)
        return peer
    }

    func generateKeys(_ lab: NetnsLab, wrongPresharedKey: Bool) throws -> Keys {
        func output(_ command: String) throws -> String {
            try lab.run("sh", "-c", command).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let privateA = try output("wg genkey")
        let privateB = try output("wg genkey")
        let psk = try output("wg genpsk")
        return Keys(
            privateA: privateA, publicA: try output("echo \(privateA) | wg pubkey"),
            privateB: privateB, publicB: try output("echo \(privateB) | wg pubkey"),
            presharedA: psk, presharedB: wrongPresharedKey ? try output("wg genpsk") : psk)
    }

    func peerExecutable() throws -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("WireGuardInteropPeer").path,
            URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/WireGuardInteropPeer").path,
        ]
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                            "WireGuardInteropPeer is not built (swift build --build-tests builds it)")
    }

    func ping(_ lab: NetnsLab, from namespace: String, to address: String, count: Int = 3) throws -> Bool {
        try lab.run("ip", "netns", "exec", namespace, "ping", "-c", "\(count)", "-W", "2", "-i", "0.2", address,
                    allowFailure: true).status == 0
    }

    @Test func weInitiateThenTransferMebibytesThroughAForcedRekey() throws {
        let lab = try NetnsLab(name: "wi")
        defer { lab.tearDown() }
        let peer = try bringUp(lab, Setup(peerInitiates: true, capture: "initiate.pcap"))
        #expect(try ping(lab, from: lab.namespaceB, to: "100.64.1.1"), "ping from our side: \(lab.log("peer.log"))")
        #expect(lab.log("peer.log").contains("handshakeInitiationsSent: 0") == false)

        // 4 MiB over TCP from B to A, checked with SHA-256, with a new handshake forced in the middle.
        try lab.write(TransferScripts.server, to: "server.py")
        try lab.write(TransferScripts.client, to: "client.py")
        try lab.start(["ip", "netns", "exec", lab.namespaceA, "python3", "-u", lab.path("server.py"), "100.64.1.1", "5001"],
                      log: "server.log")
        try lab.waitUntil("the TCP server") { lab.log("server.log").contains("listening") }
        let client = try lab.start(["ip", "netns", "exec", lab.namespaceB, "python3", "-u", lab.path("client.py"),
                                    "100.64.1.1", "5001", "\(4 << 20)", lab.path("continue")], log: "client.log")
        // The client sends half, then waits while the test forces a handshake and sees the new session.
        try lab.waitUntil("the first half to arrive", seconds: 30) { lab.log("client.log").contains("half sent") }
        kill(peer.processIdentifier, SIGUSR1)
        try lab.waitUntil("a second session", seconds: 15) {
            lab.log("peer.log").components(separatedBy: "sessionEstablished").count - 1 >= 2
        }
        try lab.write("go", to: "continue")
        try lab.waitUntil("the transfer to finish", seconds: 60) { !client.isRunning }
        #expect(client.terminationStatus == 0, "client: \(lab.log("client.log")) server: \(lab.log("server.log"))")
        #expect(lab.log("client.log").contains("sha256 match"))
        let sessions = lab.log("peer.log").components(separatedBy: "sessionEstablished").count - 1
        #expect(sessions >= 2, "the forced handshake established a second session: \(lab.log("peer.log"))")
        #expect(!lab.log("peer.log").contains("error"), "\(lab.log("peer.log"))")

        let handshakes = try lab.run("ip", "netns", "exec", lab.namespaceA, "wg", "show", "fz\(lab.name)A0", "latest-handshakes").output
        #expect(!handshakes.contains("\t0\n"), "wireguard-go saw a handshake: \(handshakes)")
        try checkCapture(lab, "initiate.pcap", expectSentTypes: [1, 4])
    }

    @Test func wireGuardGoInitiates() throws {
        let lab = try NetnsLab(name: "wr")
        defer { lab.tearDown() }
        _ = try bringUp(lab, Setup(peerInitiates: false, capture: "respond.pcap"))
        #expect(try ping(lab, from: lab.namespaceA, to: "100.64.1.2"), "ping from wireguard-go's side: \(lab.log("peer.log"))")
        #expect(lab.log("peer.log").contains("handshakeResponsesSent") == false, "still running")
        #expect(lab.log("peer.log").contains("sessionEstablished"), "\(lab.log("peer.log"))")
        try checkCapture(lab, "respond.pcap", expectSentTypes: [2, 4])
    }

    @Test func wrongPresharedKeyFailsCleanlyOnBothSides() throws {
        let lab = try NetnsLab(name: "wp")
        defer { lab.tearDown() }
        let peer = try bringUp(lab, Setup(peerInitiates: true, wrongPresharedKey: true))
        #expect(try ping(lab, from: lab.namespaceB, to: "100.64.1.1", count: 2) == false)
        #expect(lab.log("peer.log").contains("failed to authenticate"), "\(lab.log("peer.log"))")
        #expect(!lab.log("peer.log").contains("sessionEstablished"))
        let handshakes = try lab.run("ip", "netns", "exec", lab.namespaceA, "wg", "show", "fz\(lab.name)A0", "latest-handshakes").output
        #expect(handshakes.hasSuffix("\t0\n"), "wireguard-go completed no handshake: \(handshakes)")
        #expect(peer.isRunning, "our peer keeps running after the failure")
    }

    @Test func unknownPeerKeyIsRefused() throws {
        let lab = try NetnsLab(name: "wk")
        defer { lab.tearDown() }
        let peer = try bringUp(lab, Setup(peerInitiates: false, wrongPeerKeyForUs: true))
        #expect(try ping(lab, from: lab.namespaceA, to: "100.64.1.2", count: 2) == false)
        #expect(lab.log("peer.log").contains("different peer key"), "\(lab.log("peer.log"))")
        #expect(peer.isRunning)
    }

    /// tshark's WireGuard dissector decodes every message we sent, without errors.
    func checkCapture(_ lab: NetnsLab, _ capture: String, expectSentTypes: Set<Int>) throws {
        // Let tcpdump write what it has by stopping the lab's processes first is not possible here; the
        // capture runs packet-buffered (-U), so what was sent is on disk.
        let rows = try lab.run("tshark", "-r", lab.path(capture), "-Y", "ip.src == 10.98.0.2", "-T", "fields",
                               "-e", "wg.type", "-e", "_ws.malformed", "-e", "_ws.expert.severity").output
        var sentTypes = Set<Int>()
        for row in rows.split(separator: "\n") {
            let fields = row.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let type = try #require(fields.first.flatMap { Int($0) }, "tshark decoded a datagram we sent as WireGuard: \(row)")
            sentTypes.insert(type)
            #expect(fields.count < 2 || fields[1].isEmpty, "malformed: \(row)")
            let severities = fields.count > 2 ? fields[2].split(separator: ",").compactMap { Int($0) } : []
            #expect(severities.allSatisfy { $0 < 0x600000 }, "expert warning or error: \(row)")
        }
        #expect(sentTypes.isSuperset(of: expectSentTypes), "sent types \(sentTypes)")
    }
}

enum TransferScripts {
    static let server = """
        import hashlib, socket, sys
        server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((sys.argv[1], int(sys.argv[2]))); server.listen(1)
        print("listening", flush=True)
        connection, _ = server.accept()
        digest, total, reported = hashlib.sha256(), 0, False
        while True:
            data = connection.recv(65536)
            if not data: break
            digest.update(data); total += len(data)
            if total >= 1 << 20 and not reported:
                print("progress", total, flush=True); reported = True
        connection.sendall(digest.hexdigest().encode()); connection.close()
        print("received", total, flush=True)
        """

    static let client = """
        import hashlib, os, socket, sys, time
        size = int(sys.argv[3]); payload = os.urandom(size); flag = sys.argv[4]
        connection = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
        for offset in range(0, size, 65536):
            if offset == size // 2:
                print("half sent", flush=True)
                while not os.path.exists(flag): time.sleep(0.01)
            connection.sendall(payload[offset:offset + 65536])
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            data = connection.recv(128)
            if not data: break
            answer += data
        expected = hashlib.sha256(payload).hexdigest()
        if answer.decode() != expected:
            print("sha256 mismatch", answer, expected); sys.exit(1)
        print("sha256 match", size, "bytes")
        """
}
