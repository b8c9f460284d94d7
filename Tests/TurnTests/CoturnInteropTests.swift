import Crypto
import Foundation
import Glibc
import SansIO
import Stun
import TestSupport
import Testing
import Turn

/// Our TURN client against Debian's coturn 4.6 on loopback: BINDING, Allocate, a channel in both
/// directions with a UDP peer, Refresh, delete, the REST-API credentials, and a wrong password.
@Suite(.serialized, .offPool) struct CoturnInteropTests {
    final class Coturn {
        let process: Process
        let port: UInt16
        let directory: URL

        init(arguments: [String]) throws {
            port = UInt16(40000 + Int(getpid() % 5000) + Int.random(in: 0..<1000))
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("coturn-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let executable = try #require(["/usr/bin/turnserver"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                          "coturn is missing: run scripts/bootstrap")
            process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = [
                "-n", "--listening-ip=127.0.0.1", "--listening-port=\(port)", "--relay-ip=127.0.0.1",
                "--min-port=49152", "--max-port=65535", "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli",
                "--no-multicast-peers", "--no-rfc5780", "--no-stun-backward-compatibility", "--simple-log",
                "--log-file=\(directory.appendingPathComponent("turn.log").path)",
                "--pidfile=\(directory.appendingPathComponent("turn.pid").path)",
                "--userdb=\(directory.appendingPathComponent("turndb").path)",
            ] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Ready when it answers a BINDING.
            let probe = try UdpSocket()
            let deadline = Date().addingTimeInterval(10)
            let binding = StunMessage(class: .request, method: .binding, transactionId: .random()).encode()
            while Date() < deadline {
                probe.send(binding, to: address)
                if probe.receive(timeoutMilliseconds: 50) != nil { return }
            }
            stop()
            throw CoturnError.notReady
        }

        var address: SocketAddress { SocketAddress(ip: .v4(IPv4Address(127, 0, 0, 1)), port: port) }

        /// Whether coturn's log shows `text` within `seconds` (session events need `-V`).
        func waitForLog(_ text: String, seconds: Double = 5) -> Bool {
            let log = directory.appendingPathComponent("turn.log")
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let contents = try? String(contentsOf: log, encoding: .utf8), contents.contains(text) { return true }
                usleep(20_000)
            }
            return false
        }

        /// SIGTERM, then SIGKILL after half a second: a child of Foundation's Process starts with signals
        /// blocked, and coturn does not unblock them.
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            let deadline = Date().addingTimeInterval(0.5)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    enum CoturnError: Error { case notReady }

    /// Runs the allocation against real sockets until `done` holds or `seconds` pass; returns its events.
    @discardableResult
    func drive(_ allocation: TurnAllocation, _ socket: UdpSocket, clock: TestClock, seconds: Double = 5,
               until done: ([AllocationEvent]) -> Bool) -> [AllocationEvent] {
        var events: [AllocationEvent] = []
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            while let transmit = allocation.pollTransmit() { socket.send(transmit.payload, to: transmit.destination) }
            while let event = allocation.pollEvent() { events.append(event) }
            if done(events) { return events }
            if let (bytes, source) = socket.receive(timeoutMilliseconds: 20) {
                allocation.handle(bytes, from: source, now: clock.now)
            }
            allocation.handleTimeout(now: clock.now)
        }
        return events
    }

    /// Frames `text` as ChannelData for `peer`, sends it to coturn, and returns what the peer received.
    func sendThroughChannel(_ text: String, _ allocation: TurnAllocation, _ socket: UdpSocket, to peer: UdpSocket,
                            clock: TestClock) throws -> (bytes: [UInt8], source: SocketAddress) {
        let payload = Array(text.utf8)
        var frame = [UInt8](repeating: 0, count: 4) + payload
        let sent = frame.withUnsafeMutableBytes {
            allocation.encodeChannelData(to: peer.localAddress, payloadLength: payload.count, into: $0, now: clock.now)
        }
        let (destination, count) = try #require(sent)
        socket.send(Array(frame.prefix(count)), to: destination)
        return try #require(peer.receive(timeoutMilliseconds: 2000))
    }

    func allocate(_ coturn: Coturn, credentials: TurnCredentials) throws -> (TurnAllocation, UdpSocket, TestClock, [AllocationEvent]) {
        let socket = try UdpSocket()
        let clock = TestClock()
        let allocation = TurnAllocation(server: RelayServer(ipv4: coturn.address), credentials: credentials, now: clock.now)
        let events = drive(allocation, socket, clock: clock) { events in
            events.contains { if case .allocated = $0 { true } else if case .failed = $0 { true } else { false } }
        }
        return (allocation, socket, clock, events)
    }

    @Test func staticUserAllocatesRelaysBothWaysRefreshesAndDeletes() throws {
        let coturn = try Coturn(arguments: ["--realm=example", "--lt-cred-mech", "--user=test:test"])
        defer { coturn.stop() }
        let capture = try Capture(port: coturn.port)
        defer { capture.stop() }
        let (allocation, socket, clock, events) = try allocate(coturn, credentials: TurnCredentials(username: "test", password: "test", realm: nil))
        #expect(events.contains(.serverReflexiveCandidate(socket.localAddress)), "BINDING learns our address: \(events)")
        let relay = try #require(allocation.relayAddresses.first, "allocated: \(events)")
        #expect(events.contains(.relayCandidate(relay)))
        #expect(relay.ip == .v4(IPv4Address(127, 0, 0, 1)) && relay.port >= 49152)

        // A channel to a UDP peer, used in both directions.
        let peer = try UdpSocket()
        allocation.bindChannel(to: peer.localAddress, now: clock.now)
        drive(allocation, socket, clock: clock) { $0.contains { if case .channelBound = $0 { true } else { false } } }
        let channel = try #require(allocation.channel(for: peer.localAddress, now: clock.now))
        #expect(ChannelData.channelRange.contains(channel))

        let atPeer = try sendThroughChannel("to the peer", allocation, socket, to: peer, clock: clock)
        #expect(atPeer.bytes == Array("to the peer".utf8))
        #expect(atPeer.source == relay, "the peer sees the relayed address")

        peer.send(Array("back to us".utf8), to: relay)
        let atClient = try #require(socket.receive(timeoutMilliseconds: 2000))
        let unwrapped = try #require(atClient.bytes.withUnsafeBytes {
            allocation.decodeChannelData($0, from: atClient.source, now: clock.now)
        })
        #expect(unwrapped.peer == peer.localAddress)
        #expect(Array(atClient.bytes[unwrapped.payload]) == Array("back to us".utf8))

        // Refresh at half the lifetime (the clock jumps there), then delete.
        clock.offset = .seconds(301)
        allocation.handleTimeout(now: clock.now)
        drive(allocation, socket, clock: clock, seconds: 3) { _ in allocation.pollTimeout().map { $0 > clock.now + .seconds(200) } ?? false }
        #expect(allocation.isAllocated && allocation.ignoredResponses == 0 && allocation.failureReason == nil)
        allocation.deallocate(now: clock.now)
        let deleted = drive(allocation, socket, clock: clock) { $0.contains(.relayCandidateInvalidated(relay)) }
        #expect(deleted.contains(.relayCandidateInvalidated(relay)))
        #expect(!allocation.isAllocated)

        // Everything we sent to coturn, as tshark's STUN dissector reads it.
        capture.stop()
        let rows = try capture.fields(filter: "udp.dstport == \(coturn.port)", ["stun.type", "stun.channel", "_ws.malformed", "_ws.expert.severity"])
        let types = Set(rows.compactMap { $0[0].isEmpty ? nil : $0[0] })
        #expect(types.isSuperset(of: ["0x0001", "0x0003", "0x0009", "0x0004"]), "BINDING, ALLOCATE, CHANNEL-BIND, REFRESH: \(rows)")
        #expect(rows.contains { $0[1] == "0x4000" }, "our ChannelData frame")
        for row in rows {
            #expect(row[2].isEmpty, "malformed: \(row)")
            #expect(row[3].split(separator: ",").compactMap { Int($0) }.allSatisfy { $0 < 0x600000 }, "expert: \(row)")
        }
    }

    /// tcpdump on loopback for one port.
    final class Capture {
        let process = Process()
        let path = NSTemporaryDirectory() + "turn-\(UUID().uuidString).pcap"
        let log = NSTemporaryDirectory() + "turn-\(UUID().uuidString).log"

        init(port: UInt16) throws {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/tcpdump")
            process.arguments = ["-i", "lo", "--immediate-mode", "-U", "-w", path, "udp port \(port)"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if (try? String(contentsOfFile: log, encoding: .utf8))?.contains("listening on") == true { return }
                usleep(20_000)
            }
            throw CoturnError.notReady
        }

        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)  // packet-buffered (-U): everything captured is on disk
            process.waitUntilExit()
        }

        func fields(filter: String, _ names: [String]) throws -> [[String]] {
            defer {
                try? FileManager.default.removeItem(atPath: path)
                try? FileManager.default.removeItem(atPath: log)
            }
            return try Tshark.fields(names, of: path, filter: filter).map { row in names.map { row[$0] ?? "" } }
        }
    }

    /// coturn's `use-auth-secret`: username "expiry:user", password base64(HMAC-SHA1(secret, username)).
    @Test func restApiCredentialsAllocate() throws {
        let secret = "north-sea-\(UUID().uuidString)"
        let coturn = try Coturn(arguments: ["--realm=example.org", "--use-auth-secret", "--static-auth-secret=\(secret)"])
        defer { coturn.stop() }
        let username = "\(Int(Date().timeIntervalSince1970) + 3600):client"
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(username.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        let password = Data(mac).base64EncodedString()
        let (allocation, _, _, events) = try allocate(coturn, credentials: TurnCredentials(username: username, password: password, realm: nil))
        #expect(allocation.isAllocated, "\(events)")
        #expect(events.contains { if case .allocated = $0 { true } else { false } })
    }

    @Test func wrongPasswordEndsInBadCredentialsNotARetryLoop() throws {
        let coturn = try Coturn(arguments: ["--realm=example", "--lt-cred-mech", "--user=test:test"])
        defer { coturn.stop() }
        let (allocation, _, _, events) = try allocate(coturn, credentials: TurnCredentials(username: "test", password: "nope", realm: nil))
        #expect(events.contains(.failed(.badCredentials)), "\(events)")
        #expect(allocation.failureReason == .badCredentials)
        #expect(allocation.pollTransmit() == nil && allocation.pollTimeout() == nil, "nothing more is sent")
    }

    @Test func realmOtherThanConfiguredIsRefused() throws {
        let coturn = try Coturn(arguments: ["--realm=example", "--lt-cred-mech", "--user=test:test"])
        defer { coturn.stop() }
        let (allocation, _, _, events) = try allocate(coturn, credentials: TurnCredentials(username: "test", password: "test", realm: "firezone"))
        // With a configured realm the first ALLOCATE is already signed; coturn answers 401 naming "example".
        #expect(events.contains(.failed(.realmMismatch(expected: "firezone", received: "example"))), "\(events)")
        #expect(!allocation.isAllocated)
    }

    /// coturn 4.6 answers a CHANNEL-BIND on an allocation it no longer has with 400 Bad Request, not 437 (its
    /// fix, coturn#2067, is newer than Debian's package). The allocation must then ask at once whether it still
    /// exists (REFRESH → 437), allocate again and bind the channel there, instead of trying further numbers.
    @Test func aChannelBindRefusedOnAVanishedAllocationAllocatesAgainAndBinds() throws {
        let coturn = try Coturn(arguments: ["--realm=example", "--lt-cred-mech", "--user=test:test", "--verbose"])
        defer { coturn.stop() }
        let (allocation, socket, clock, _) = try allocate(coturn, credentials: TurnCredentials(username: "test", password: "test", realm: nil))
        let firstRelay = try #require(allocation.relayAddresses.first)
        try deleteBehindItsBack(socket, coturn, username: "test", realm: "example", password: "test")

        let peer = try UdpSocket()
        allocation.bindChannel(to: peer.localAddress, now: clock.now)
        let events = drive(allocation, socket, clock: clock) { events in
            events.contains { if case .channelBound = $0 { true } else { false } }
        }
        #expect(events.contains(.relayCandidateInvalidated(firstRelay)), "\(events)")
        #expect(events.contains { if case .allocated = $0 { true } else { false } }, "\(events)")
        let secondRelay = try #require(allocation.relayAddresses.first)
        #expect(events.contains(.relayCandidate(secondRelay)))
        let channel = try #require(allocation.channel(for: peer.localAddress, now: clock.now), "\(events)")

        // The new channel carries data to the peer.
        let atPeer = try sendThroughChannel("after the loss", allocation, socket, to: peer, clock: clock)
        #expect(atPeer.bytes == Array("after the loss".utf8) && atPeer.source == secondRelay)
        #expect(ChannelData.channelRange.contains(channel))
    }

    /// Deletes the allocation of `socket` on coturn with our own REFRESH (LIFETIME 0), so that the
    /// `TurnAllocation` on the same socket does not know: what coturn does on its own after a failed send.
    private func deleteBehindItsBack(_ socket: UdpSocket, _ coturn: Coturn, username: String, realm: String, password: String) throws {
        let unsigned = StunMessage(class: .request, method: .refresh, transactionId: .random(), attributes: [.lifetime(seconds: 0)])
        socket.send(unsigned.encode(), to: coturn.address)
        let challenge = try StunMessage(decoding: try #require(socket.receive(timeoutMilliseconds: 2000)).bytes)
        let nonce = try #require(challenge.first { if case .nonce(let n) = $0 { n } else { nil } }, "401 with a nonce")
        let signed = StunMessage(class: .request, method: .refresh, transactionId: .random(), attributes: [
            .lifetime(seconds: 0), .username(username), .realm(realm), .nonce(nonce),
        ])
        let key = StunKey.longTerm(username: username, realm: realm, password: password)
        socket.send(signed.encode(integrity: .sha1(key: key)), to: coturn.address)
        let answer = try StunMessage(decoding: try #require(socket.receive(timeoutMilliseconds: 2000)).bytes)
        #expect(answer.messageClass == .successResponse, "coturn accepted the deletion: \(answer)")
        // coturn deletes it at its next timer tick, up to a second later, and logs that (with -V).
        #expect(coturn.waitForLog("delete: realm=<\(realm)>, username=<\(username)>"), "coturn deleted the allocation")
    }
}
