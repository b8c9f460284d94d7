import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import PhoenixChannel
import PhoenixChannelTransport
import TestSupport
import Testing

/// `PortalChannel` against an independent Phoenix V1 server (Python `websockets`, `Tests/Support/phoenix_server.py`)
/// that misbehaves on command: the §1.2 request with the §8 token header, the join timeout, both backoff
/// schedules, `Retry-After`, 401 problem details, heartbeats, Close frames, TLS, and that the token never shows.
@Suite(.serialized, .offPool) struct PortalChannelTransportTests {
    static let token = "SECRET-TOKEN-4d2f9a"

    @Test func joinsWithTheSpecsRequestAndQueuesUntilJoined() async throws {
        let server = try PhoenixTestServer("normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        run.channel.send(event: "create_flow", payload: #"{"resource_id":"r"}"#)  // before the join: must wait
        let started = run.start()

        guard case .request(let request) = try await server.next() else { throw Failure("no request") }
        #expect(request.path.hasPrefix("/client/v2/websocket?external_id="))
        #expect(request.path.hasSuffix("&name=test-device&public_key=cHVibGljLWtleQ%3D%3D"))
        #expect(!request.path.contains(Self.token), "never in the URL")
        #expect(request.header("X-Authorization") == ["Bearer \(Self.token)"])
        #expect(request.header("Host") == ["127.0.0.1"], "Host without the port (§1.2)")
        #expect(request.header("Origin").isEmpty && request.header("Sec-WebSocket-Protocol").isEmpty)
        #expect(request.header("User-Agent") == ["Debian/12.0.0 headless-client/1.5.5 (x86_64; 6.1.0-test)"])
        #expect(request.header("Sec-WebSocket-Version") == ["13"])

        var frames: [String] = []
        for _ in 0..<2 {
            frames.append(try await server.waitFor { if case .frame(let text) = $0 { text } else { nil } })
        }
        #expect(frames[0] == #"{"topic":"client","event":"phx_join","payload":null,"ref":0}"#)
        #expect(frames[1] == #"{"topic":"client","event":"create_flow","payload":{"resource_id":"r"},"ref":1}"#)
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")

        run.channel.close()
        try await started.value
        _ = try await server.waitFor { if case .disconnected = $0 { true } else { nil } }
        run.expectNoToken()
    }

    @Test func aJoinWithoutReplyTimesOutAfterFiveSecondsAndRetriesASecondLater() async throws {
        let server = try PhoenixTestServer("silent-join,normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let clock = ContinuousClock()
        let begin = clock.now
        let started = run.start()
        guard case .hiccup(let delay, let reason) = try await run.events.next() else { throw Failure("no hiccup") }
        let waited = begin.duration(to: clock.now)
        #expect(reason == "room join timed out")
        #expect(waited >= .seconds(5) && waited < .seconds(10), "the 5 s join timeout, measured \(waited)")
        #expect(delay == .seconds(1), "never joined: the initial-connect schedule")
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
        run.expectNoToken()
    }

    @Test func beforeTheFirstJoinErrorsAreRetriedEverySecond() async throws {
        let server = try PhoenixTestServer("status:500,status:403,normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        for expected in ["the portal answered HTTP 500", "the portal answered HTTP 403"] {
            guard case .hiccup(let delay, let reason) = try await run.events.next() else { throw Failure("no hiccup") }
            #expect(reason == expected && delay == .seconds(1))
        }
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
        #expect(run.logLines.filter { $0.contains("Hiccup in portal connection") }.count == 2, "the log capture works")
        run.expectNoToken()
    }

    @Test func onceJoinedErrorsAreRetriedOnTheReconnectSchedule() async throws {
        let server = try PhoenixTestServer("close-after-init,status:502,status:422,normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")
        var delays: [Duration] = []
        for _ in 0..<3 {
            guard case .hiccup(let delay, _) = try await run.events.next() else { throw Failure("no hiccup") }
            delays.append(delay)
        }
        #expect(delays[0] >= .milliseconds(250) && delays[0] <= .milliseconds(750), "0.5 s ± 50 %: \(delays[0])")
        #expect(delays[1] >= .milliseconds(375) && delays[1] <= .milliseconds(1125), "0.75 s ± 50 %: \(delays[1])")
        #expect(delays[2] >= .milliseconds(562) && delays[2] <= .milliseconds(1688), "1.125 s ± 50 %: \(delays[2])")
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
    }

    @Test(arguments: [("status:429:retry=2", 2000...2000), ("status:503:retry=+3", 1000...3000)])
    func retryAfterIsHonoured(behaviour: String, milliseconds: ClosedRange<Int>) async throws {
        let server = try PhoenixTestServer("\(behaviour),normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        guard case .hiccup(let delay, _) = try await run.events.next() else { throw Failure("no hiccup") }
        #expect(milliseconds.contains(Int(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)),
                "Retry-After \(behaviour): \(delay)")
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
    }

    @Test(arguments: [
        ("problem:401:invalid_token", PhoenixChannelError.invalidToken),
        ("problem:401:missing_token", .invalidToken),
        ("problem:401:device_untrusted", .authenticationFailed(detail: "detail of device_untrusted")),
        ("status:401", .authenticationFailed(detail: "no reason provided")),
    ])
    func only401IsFatalAndOnlyABadTokenMeansSignIn(behaviour: String, expected: PhoenixChannelError) async throws {
        let server = try PhoenixTestServer("\(behaviour),normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let error = await run.fatalError()
        #expect(error == expected)
        #expect(error?.requiresSignIn == (expected == .invalidToken))
        run.expectNoToken(also: error?.description)
    }

    @Test func unansweredHeartbeatsReconnect() async throws {
        let server = try PhoenixTestServer("deaf-heartbeats,normal")
        defer { server.stop() }
        let run = Harness(port: server.port, heartbeatInterval: .milliseconds(200))
        let started = run.start()
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")
        guard case .hiccup(_, let reason) = try await run.events.next() else { throw Failure("no hiccup") }
        #expect(reason == "too many heartbeats were unanswered")
        var heartbeats = 0
        while true {
            let seen = try await server.next()
            if case .disconnected = seen { break }
            if case .frame(let text) = seen, text.contains(#""event":"heartbeat""#) { heartbeats += 1 }
        }
        #expect(heartbeats == 3, "three went unanswered; the fourth was due")
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
    }

    @Test func answeredHeartbeatsKeepTheConnection() async throws {
        let server = try PhoenixTestServer("normal")
        defer { server.stop() }
        let run = Harness(port: server.port, heartbeatInterval: .milliseconds(100))
        let started = run.start()
        #expect(try await run.events.next() == .joined)
        var heartbeats = 0
        while heartbeats < 8 {
            if case .frame(let text) = try await server.next(), text.contains(#""event":"heartbeat""#) { heartbeats += 1 }
        }
        run.channel.close()
        try await started.value
        #expect(!run.events.all.contains { if case .hiccup = $0 { true } else { false } }, "eight heartbeats, all answered, no reconnect")
    }

    @Test func aCloseFrameIsEchoedAndReconnects() async throws {
        let server = try PhoenixTestServer("close-frame,normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")
        guard case .hiccup(_, let reason) = try await run.events.next() else { throw Failure("no hiccup") }
        #expect(reason == "the portal sent a WebSocket close frame: 1001 going away")
        let echoed = try await server.waitFor { if case .closeReceived(let code) = $0 { code } else { nil } }
        #expect(echoed == 1000, "the Close frame is answered with one of ours (RFC 6455 §5.5.1: swift-websocket answers 1000)")
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
    }

    @Test func tokenExpiredIsFatalAndMeansSignOut() async throws {
        let server = try PhoenixTestServer("token-expired")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let error = await run.fatalError()
        #expect(error == .tokenExpired && error?.requiresSignIn == true)
    }

    @Test func aJoinErrorIsFatal() async throws {
        let server = try PhoenixTestServer("join-error")
        defer { server.stop() }
        let error = await Harness(port: server.port).fatalError()
        #expect(error == .loginFailed(reason: "invalid_version"))
    }

    @Test func aConnectionDroppedMidStreamReconnectsAndRejoins() async throws {
        let server = try PhoenixTestServer("close-after-init,normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")
        guard case .hiccup(let delay, _) = try await run.events.next() else { throw Failure("no hiccup") }
        #expect(delay >= .milliseconds(250) && delay <= .milliseconds(750), "joined before: the reconnect schedule")
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")
        run.channel.close()
        try await started.value
    }

    /// What the apps do when the tunnel learns it has no relays: a new connection, so the portal sends `init` again.
    @Test func reconnectOnRequestDropsTheConnectionAndRejoinsAtOnce() async throws {
        let server = try PhoenixTestServer("normal,normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")
        run.channel.reconnect(reason: "no relays")
        guard case .hiccup(let delay, let reason) = try await run.events.next() else { throw Failure("no hiccup") }
        #expect(delay == .zero && reason == "no relays")
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init", "a fresh init on the new connection")
        _ = try await server.waitFor { if case .disconnected = $0 { true } else { nil } }
        run.channel.close()
        try await started.value
    }

    /// A channel closed while its upgrade is under way returns at once; it used to wait for that connection, which
    /// once open was never closed (a relay whose health-check address was taken never exited).
    @Test func closingWhileTheUpgradeIsUnderWayReturns() async throws {
        let server = try PhoenixTestServer("slow-upgrade:1500")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        _ = try await server.waitFor { if case .request = $0 { true } else { nil } }
        run.channel.close()
        // Awaiting the task itself cannot be given up on; its end is signalled through a stream that can.
        let (ended, signal) = AsyncStream.makeStream(of: Void.self)
        Task {
            _ = try? await started.value
            signal.finish()
        }
        let returned = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in ended {}
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(10))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(returned, "run() still running 10 s after close()")
    }

    @Test func garbageFramesAreDroppedAndTheConnectionStays() async throws {
        let server = try PhoenixTestServer("garbage")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        #expect(try await run.events.next() == .joined)
        #expect(try await run.events.next().pushEvent == "init")
        // "not json", a binary frame, a string ref, "[1,2]" and a reply without ref are dropped; no hiccup.
        #expect(try await run.events.next().pushEvent == "after_garbage")
        run.channel.close()
        try await started.value
    }

    @Test func errorsRetryUntilTheMaximumPartitionTime() async throws {
        let server = try PhoenixTestServer("close-after-init,status:503")
        defer { server.stop() }
        let run = Harness(port: server.port, maxElapsed: .seconds(2))
        let error = await run.fatalError()
        #expect(error == .maxRetriesReached(lastError: "the portal answered HTTP 503"))
        #expect(run.events.all.contains(.joined), "the partition time counts once joined")
        run.expectNoToken(also: error?.description)
    }

    @Test func tlsUntrustedCertificateIsFatalAndTrustedOneJoins() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phoenix-tls-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=localhost",
                             "-addext", "subjectAltName=DNS:localhost"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        #expect(openssl.terminationStatus == 0)

        let server = try PhoenixTestServer("normal", tls: (certificate, key))
        defer { server.stop() }
        let untrusted = Harness(port: server.port, scheme: "wss", host: "localhost")
        #expect(await untrusted.fatalError() == .invalidPeerCertificate)

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificate)
        let trusted = Harness(port: server.port, scheme: "wss", host: "localhost", tls: tls)
        let started = trusted.start()
        #expect(try await trusted.events.next() == .joined)
        trusted.channel.close()
        try await started.value
    }
}

/// One channel under test: its configuration, its events as an async iterator, and every log line it wrote.
final class Harness: Sendable {
    let channel: PortalChannel<PhoenixRawPayload>
    let events: EventQueue<PortalChannel<PhoenixRawPayload>.Event>
    private let logs: NIOLockedValueBox<[String]>

    init(port: Int, scheme: String = "ws", host: String = "127.0.0.1", maxElapsed: Duration? = .seconds(60),
         tls: TLSConfiguration = .makeClientConfiguration(), heartbeatInterval: Duration = .seconds(10)) {
        let url = try! LoginUrl(apiUrl: "\(scheme)://\(host):\(port)", mode: .client, token: PortalChannelTransportTests.token,
                                device: .init(id: "device-1", name: "test-device"))
        let userAgent = UserAgent(osType: "Debian", osVersion: "12.0.0", component: .headlessClient, version: "1.5.5",
                                  architecture: "x86_64", kernelRelease: "6.1.0-test")
        let logs = NIOLockedValueBox<[String]>([])
        var logger = Logger(label: "test") { _ in CapturingLogHandler(lines: logs) }
        logger.logLevel = .trace
        channel = PortalChannel(
            configuration: .init(url: url, publicKey: "cHVibGljLWtleQ==", userAgent: userAgent, maxElapsed: maxElapsed, tls: tls,
                                 executor: ThreadPerJobExecutor.shared, heartbeatInterval: heartbeatInterval),
            topic: "client", logger: logger)
        events = EventQueue()
        self.logs = logs
    }

    /// Runs the channel in a task, feeding `events`.
    func start() -> Task<Void, any Error> {
        Task(executorPreference: ThreadPerJobExecutor.shared) { [channel, events] in
            try await channel.run { events.push($0) }
        }
    }

    /// Runs until the channel stops and returns its fatal error; `nil` if it returned without one.
    func fatalError() async -> PhoenixChannelError? {
        do {
            try await channel.run { [events] in events.push($0) }
            return nil
        } catch {
            return error
        }
    }

    var logLines: [String] { logs.withLockedValue { $0 } }

    func expectNoToken(also text: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let everything = logs.withLockedValue { $0 } + events.all.map { "\($0)" } + [text ?? ""]
        #expect(!everything.contains { $0.contains(PortalChannelTransportTests.token) }, "the token leaked",
                sourceLocation: sourceLocation)
        #expect(!everything.contains { $0.contains("token=") || $0.contains("Bearer") }, sourceLocation: sourceLocation)
    }
}

struct CapturingLogHandler: LogHandler {
    let lines: NIOLockedValueBox<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.withLockedValue { $0.append("\(event.level) \(event.message) \(event.metadata ?? [:]) \(metadata)") }
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension PortalChannel<PhoenixRawPayload>.Event {
    var pushEvent: String? {
        if case .message(let frame) = self { frame.event } else { nil }
    }
}
