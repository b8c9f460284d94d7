import AppRuntime
import Foundation
import Glibc
import SansIO
import Stun
import Testing
import TestSupport
import Turn

/// Our TURN client (`Turn.TurnAllocation`) over `AppRuntime.RelayStream` against Debian's coturn on its TCP and its
/// TLS listener (RFC 8656 §3): allocate, bind a channel to a UDP peer, ChannelData both ways (padded on the stream),
/// with the TLS certificate checked against the name the stream gives. coturn decides whether our framing is right.
@Suite(.serialized, .offPool) struct RelayStreamCoturnTests {
    /// coturn with a static user on loopback: TCP on `port`, TLS on `port + 1` with a certificate for `relay.test`.
    final class Coturn {
        let process: Process
        let port = UInt16(30000 + Int(getpid() % 4000) * 2)
        let directory: String

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("coturn-stream-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = try Shell.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                               "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem", "-subj", "/CN=relay.test",
                               "-addext", "subjectAltName=DNS:relay.test"])
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/turnserver")
            process.arguments = [
                "-n", "--listening-ip=127.0.0.1", "--listening-port=\(port)", "--tls-listening-port=\(port + 1)",
                "--relay-ip=127.0.0.1", "--min-port=49152", "--max-port=65535", "--allow-loopback-peers", "--no-dtls", "--no-udp",
                "--no-cli", "--no-multicast-peers", "--no-rfc5780", "--no-stun-backward-compatibility", "--simple-log",
                "--cert=\(directory)/cert.pem", "--pkey=\(directory)/key.pem",
                "--log-file=\(directory)/turn.log", "--pidfile=\(directory)/turn.pid", "--userdb=\(directory)/turndb",
                "--realm=example", "--lt-cred-mech", "--user=test:test",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Ready once both listening sockets exist.
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let listening = try Shell.run("ss", "-Hltn", "sport = :\(port) or sport = :\(port + 1)").output
                if listening.contains(":\(port) "), listening.contains(":\(port + 1) ") { return }
                usleep(20_000)
            }
            stop()
            throw CoturnNotReady()
        }

        struct CoturnNotReady: Error {}

        func stop() {
            kill(process.processIdentifier, SIGKILL)  // Foundation starts children with SIGTERM blocked
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// ChannelData payloads that came back through the relay.
    final class Inbox {
        var payloads: [[UInt8]] = []
    }

    /// Moves bytes between the allocation and the stream, and between the peer and our side, until `done` or 5 s.
    func drive(_ allocation: TurnAllocation, _ stream: RelayStream, clock: TestClock, received: Inbox,
               until done: (TurnAllocation, [AllocationEvent]) -> Bool) -> [AllocationEvent] {
        var events: [AllocationEvent] = []
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            while let transmit = allocation.pollTransmit() {
                #expect(transmit.destination == stream.relay)
                stream.send(transmit.payload)
            }
            while let event = allocation.pollEvent() { events.append(event) }
            if done(allocation, events) { return events }
            if case .closed = stream.state { return events }
            var descriptor = pollfd(fd: stream.fileDescriptor, events: Int16(POLLIN) | (stream.wantsToWrite ? Int16(POLLOUT) : 0), revents: 0)
            _ = poll(&descriptor, 1, 20)
            if descriptor.revents & Int16(POLLOUT) != 0 { stream.handleWritable() }
            if descriptor.revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                stream.handleReadable { datagram in
                    if let (_, payload) = allocation.decodeChannelData(datagram, from: stream.relay, now: clock.now) {
                        received.payloads.append(Array(datagram[payload]))
                    } else {
                        _ = allocation.handle(Array(datagram), from: stream.relay, now: clock.now)
                    }
                }
            }
            allocation.handleTimeout(now: clock.now)
        }
        return events
    }

    @Test("allocate over TCP and over TLS, a channel to a UDP peer, ChannelData of every padding both ways", arguments: ["tcp", "tls"])
    func allocateAndRelay(transport: String) throws {
        let coturn = try Coturn()
        defer { coturn.stop() }
        let clock = TestClock()
        let relay = SocketAddress(ip: .v4(IPv4Address(127, 0, 0, 1)), port: transport == "tls" ? coturn.port + 1 : coturn.port)
        let stream = try RelayStream(connectingTo: relay, transport: transport == "tls"
            ? .tls(serverName: "relay.test", context: try TlsContext.client(trustedCertificatesFile: coturn.directory + "/cert.pem")) : .tcp)
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay), credentials: TurnCredentials(username: "test", password: "test", realm: nil),
                                        now: clock.now)
        let received = Inbox()
        let events = drive(allocation, stream, clock: clock, received: received) { allocation, _ in allocation.isAllocated }
        let relayed = try #require(allocation.relayAddresses.first, "allocated over \(transport): \(events) \(stream.state)")
        #expect(relayed.ip == .v4(IPv4Address(127, 0, 0, 1)) && relayed.port >= 49152)

        let peer = try TestSupport.UdpSocket()
        allocation.bindChannel(to: peer.localAddress, now: clock.now)
        _ = drive(allocation, stream, clock: clock, received: received) { allocation, _ in allocation.channel(for: peer.localAddress, now: clock.now) != nil }
        // Payloads of 4 to 7 bytes: every padding a stream needs (0 to 3 bytes).
        for length in 4...7 {
            let payload = (0..<length).map { UInt8($0 + 0x61) }
            var frame = [UInt8](repeating: 0, count: 4) + payload
            let framed = frame.withUnsafeMutableBytes {
                allocation.encodeChannelData(to: peer.localAddress, payloadLength: length, into: $0, now: clock.now)
            }
            let (destination, count) = try #require(framed, "a channel for the peer")
            #expect(destination == relay)
            stream.send(Array(frame.prefix(count)))
            _ = drive(allocation, stream, clock: clock, received: received) { _, _ in !stream.wantsToWrite }
            let arrived = try #require(peer.receive(timeoutMilliseconds: 2000), "the peer got \(length) bytes over \(transport)")
            #expect(arrived.bytes == payload && arrived.source == relayed)
            peer.send(Array(payload.reversed()), to: relayed)
            _ = drive(allocation, stream, clock: clock, received: received) { _, _ in received.payloads.count == length - 3 }
            #expect(received.payloads.last == Array(payload.reversed()), "the answer came back as ChannelData over \(transport)")
        }
        #expect(stream.state == .established && stream.dropped == 0)
    }

    @Test("a TLS certificate for another name: the stream ends with a TLS error, nothing allocated")
    func wrongServerName() throws {
        let coturn = try Coturn()
        defer { coturn.stop() }
        let clock = TestClock()
        let relay = SocketAddress(ip: .v4(IPv4Address(127, 0, 0, 1)), port: coturn.port + 1)
        let stream = try RelayStream(connectingTo: relay, transport: .tls(
            serverName: "other.test", context: try TlsContext.client(trustedCertificatesFile: coturn.directory + "/cert.pem")))
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay), credentials: TurnCredentials(username: "test", password: "test", realm: nil),
                                        now: clock.now)
        let received = Inbox()
        _ = drive(allocation, stream, clock: clock, received: received) { allocation, _ in allocation.isAllocated }
        guard case .closed(.tls(let error)) = stream.state else {
            Issue.record("expected a TLS failure, got \(stream.state)")
            return
        }
        #expect("\(error)".contains("certificate verify failed"), "\(error)")
        #expect(!allocation.isAllocated)
    }

    @Test("nothing listening: the connection fails with the reason")
    func refused() throws {
        let stream = try RelayStream(connectingTo: SocketAddress("127.0.0.1:9")!, transport: .tcp)
        var descriptor = pollfd(fd: stream.fileDescriptor, events: Int16(POLLOUT), revents: 0)
        _ = poll(&descriptor, 1, 2000)
        stream.handleWritable()
        guard case .closed(.connectFailed(let error)) = stream.state else {
            Issue.record("expected a refused connection, got \(stream.state)")
            return
        }
        #expect("\(error)".contains("connect TCP to 127.0.0.1:9"), "\(error)")
        #expect(!stream.send([0, 1, 0, 0]), "nothing is queued on a closed stream")
    }

    /// A "relay" (Python) that answers with bytes that are not TURN, or closes at once: the stream ends with a typed
    /// error that says what came, nothing is delivered, nothing more is queued.
    @Test("a relay that sends garbage or closes: a typed end, nothing delivered", arguments: [
        ("garbage", "8000000000000000"),
        ("STUN without the magic cookie", "0101000000000000"),
        ("closed at once", ""),
    ])
    func misbehavingRelay(label: String, reply: String) throws {
        let script = """
            import socket, sys
            server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
            print(server.getsockname()[1], flush=True)
            connection, _ = server.accept()
            connection.recv(4096)
            connection.sendall(bytes.fromhex(sys.argv[1]))
            connection.close()
            """
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-c", script, reply]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)  // Foundation starts children with SIGTERM blocked
            server.waitUntilExit()
        }
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try #require(UInt16(line), "the server's port: \(line)")
        let stream = try RelayStream(connectingTo: SocketAddress(ip: .v4(IPv4Address(127, 0, 0, 1)), port: port), transport: .tcp)
        let binding = StunMessage(class: .request, method: .binding, transactionId: .random()).encode()
        #expect(stream.send(binding))
        var delivered = 0
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, case .connecting = stream.state {
            var descriptor = pollfd(fd: stream.fileDescriptor, events: Int16(POLLOUT), revents: 0)
            _ = poll(&descriptor, 1, 50)
            stream.handleWritable()
        }
        while Date() < deadline, stream.state == .established {
            var descriptor = pollfd(fd: stream.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 50)
            stream.handleReadable { _ in delivered += 1 }
        }
        guard case .closed(let error) = stream.state else {
            Issue.record("\(label): the stream did not end: \(stream.state)")
            return
        }
        switch error {
        case .framing: #expect(!reply.isEmpty, "\(label): \(error)")
        case .closedByRelay: #expect(reply.isEmpty, "\(label): \(error)")
        default: Issue.record("\(label): \(error)")
        }
        #expect(delivered == 0 && !stream.send(binding), "\(label)")
    }
}
