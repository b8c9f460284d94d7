import Foundation
import Glibc
import Ice
import SansIO
import Stun
import TestSupport
import Testing

/// Our agent against aioice, an independent RFC 5245 implementation (PyPI). aioice runs in a network
/// namespace whose only interface is a veth to the test's namespace (it skips loopback when gathering);
/// credentials and candidates travel over its stdin/stdout as JSON lines.
@Suite(.serialized, .offPool) struct AioiceInteropTests {
    final class Namespace {
        let name = "fzice-a"
        init() throws {
            try #require(getuid() == 0, "the ICE interop test creates a network namespace and needs root")
            tearDown()
            try Shell.run("ip", "netns", "add", name)
            try Shell.run("ip", "link", "add", "fzice-r", "type", "veth", "peer", "name", "fzice-n")
            try Shell.run("ip", "link", "set", "fzice-n", "netns", name)
            try Shell.run("ip", "addr", "add", "10.96.0.2/24", "dev", "fzice-r")
            try Shell.run("ip", "link", "set", "fzice-r", "up")
            try Shell.run("ip", "-n", name, "addr", "add", "10.96.0.1/24", "dev", "fzice-n")
            try Shell.run("ip", "-n", name, "link", "set", "fzice-n", "up")
            try Shell.run("ip", "-n", name, "link", "set", "lo", "up")
        }

        func tearDown() {
            _ = try? Shell.run("ip", "netns", "del", name, allowFailure: true)
            _ = try? Shell.run("ip", "link", "del", "fzice-r", allowFailure: true)
        }
    }

    struct Signal: Codable {
        var ufrag: String
        var pwd: String
        var candidates: [String]
    }

    struct Outcome: Codable {
        var connected: Bool
        var received: String?
        var error: String?
    }

    func run(weControl: Bool) throws {
        let namespace = try Namespace()
        defer { namespace.tearDown() }
        let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/aioice_peer.py").path
        let peer = Process()
        peer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        peer.arguments = ["ip", "netns", "exec", namespace.name, "python3", "-u", script, weControl ? "controlled" : "controlling"]
        let toPeer = Pipe()
        let fromPeer = Pipe()
        peer.standardInput = toPeer
        peer.standardOutput = fromPeer
        peer.standardError = FileHandle.nullDevice
        try peer.run()
        defer {
            if peer.isRunning { kill(peer.processIdentifier, SIGKILL) }
            peer.waitUntilExit()
        }
        let lines = LineReader(fromPeer.fileHandleForReading)
        let theirs = try JSONDecoder().decode(Signal.self, from: Data(try #require(lines.next(timeout: 15), "aioice signalled").utf8))

        let socket = try UdpSocket(bindTo: "10.96.0.2")
        let clock = TestClock()
        let ours = IceCredentials(ufrag: "swft", password: "swiftpasswordswiftpass")
        let agent = IceAgent(controlling: weControl, local: ours, remote: IceCredentials(ufrag: theirs.ufrag, password: theirs.pwd),
                             timings: .clientDefault)
        let host = try #require(agent.addLocalCandidate(kind: .host, address: socket.localAddress))
        for candidate in theirs.candidates {
            agent.addRemoteCandidate(try IceCandidateString.parse("candidate:" + candidate))
        }
        let signal = Signal(ufrag: ours.ufrag, pwd: ours.password,
                            candidates: [String(IceCandidateString.format(host).dropFirst("candidate:".count))])
        toPeer.fileHandleForWriting.write(try JSONEncoder().encode(signal) + Data("\n".utf8))

        var applicationData: [String] = []
        var outcome: Outcome?
        let deadline = Date().addingTimeInterval(25)
        while outcome == nil, Date() < deadline {
            agent.handleTimeout(now: clock.now)
            while let transmit = agent.pollTransmit() { socket.send(transmit.payload, to: transmit.destination) }
            if let (bytes, source) = socket.receive(timeoutMilliseconds: 20) {
                let kind = bytes.withUnsafeBytes { DatagramKind.classify($0) }
                if kind == .stun {
                    agent.handle(bytes, from: source, to: socket.localAddress, now: clock.now)
                } else {
                    applicationData.append(String(decoding: bytes, as: UTF8.self))
                    if let nominated = agent.nominated, nominated.remote == source { socket.send(Array("pong".utf8), to: source) }
                }
            }
            if let line = lines.next(timeout: 0) { outcome = try JSONDecoder().decode(Outcome.self, from: Data(line.utf8)) }
        }
        let result = try #require(outcome, "aioice finished within 25 s")
        #expect(result.connected, "aioice: \(result.error ?? "")")
        #expect(result.received == "pong", "aioice got our reply over the nominated pair")
        #expect(applicationData.contains("ping"), "we got aioice's data")
        #expect(agent.nominated?.remote == SocketAddress("10.96.0.1:\(agent.nominated?.remote.port ?? 0)"))
        #expect(agent.state == .connected || agent.state == .completed)
        #expect(agent.droppedMessages == 0)
    }

    @Test func weControlAndAioiceFollows() throws {
        try run(weControl: true)
    }

    @Test func aioiceControlsAndWeFollow() throws {
        try run(weControl: false)
    }
}
