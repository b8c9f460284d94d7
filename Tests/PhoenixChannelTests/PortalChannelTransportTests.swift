import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import PhoenixChannel
import PhoenixChannelTransport
import TestSupport
import Testing

/// `PortalChannel` against an independent Phoenix V1 server (Python `websockets`, `Tests/Support/phoenix_server.py`)
/// that misbehaves on command: the §1.2 request, the join timeout, the backoff schedule, fatal/retry
/// classification, TLS, and that the token never shows.
@Suite(.serialized, .offPool) struct PortalChannelTransportTests {
    static let token = "SECRET-TOKEN-4d2f9a"

    @Test func joinsWithTheSpecsRequestAndQueuesUntilJoined() async throws {
        let server = try PhoenixTestServer("normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        run.channel.send(event: "create_flow", payload: #"{"resource_id":"r"}"#)  // before the join: must wait
        let started = run.start()

        guard case .request(let request) = try await server.next() else { throw Failure("no request") }
        #expect(request.path.hasPrefix("/client/websocket?token=\(Self.token)&external_id="))
        #expect(request.path.hasSuffix("&name=test-device&public_key=cHVibGljLWtleQ%3D%3D"))
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

    @Test func aJoinWithoutReplyTimesOutAfterFiveSecondsAndRetriesAtOnce() async throws {
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
        #expect(delay == .zero, "the first retry is immediate")
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
        run.expectNoToken()
    }

    @Test func serverErrorsAreRetriedOnTheBackoffSchedule() async throws {
        let server = try PhoenixTestServer("status:500,status:502,status:503,normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let started = run.start()
        var delays: [Duration] = []
        for _ in 0..<3 {
            guard case .hiccup(let delay, let reason) = try await run.events.next() else { throw Failure("no hiccup") }
            #expect(reason.hasPrefix("the portal answered HTTP 50"))
            delays.append(delay)
        }
        #expect(delays[0] == .zero)
        #expect(delays[1] >= .milliseconds(250) && delays[1] <= .milliseconds(750), "0.5 s ± 50 %: \(delays[1])")
        #expect(delays[2] >= .milliseconds(375) && delays[2] <= .milliseconds(1125), "0.75 s ± 50 %: \(delays[2])")
        #expect(try await run.events.next() == .joined)
        run.channel.close()
        try await started.value
        #expect(run.logLines.filter { $0.contains("Hiccup in portal connection") }.count == 3, "the log capture works")
        run.expectNoToken()
    }

    @Test(arguments: [401, 403, 404, 422])
    func clientErrorsOnUpgradeAreFatal(_ status: Int) async throws {
        let server = try PhoenixTestServer("status:\(status),normal")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let error = await run.fatalError()
        #expect(error == .rejected(status: status))
        #expect(error?.isAuthenticationError == (status == 401 || status == 403), "401/403 mean sign out")
        run.expectNoToken(also: error?.description)
    }

    @Test func tokenExpiredIsFatalAndMeansSignOut() async throws {
        let server = try PhoenixTestServer("token-expired")
        defer { server.stop() }
        let run = Harness(port: server.port)
        let error = await run.fatalError()
        #expect(error == .tokenExpired && error?.isAuthenticationError == true)
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
        #expect(delay == .zero)
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

    @Test func networkErrorsRetryUntilTheMaximumElapsedTime() async throws {
        let closedPort = try PhoenixTestServer("normal")
        let port = closedPort.port
        closedPort.stop()  // nothing listens there any more: connection refused
        let run = Harness(port: port, maxElapsed: .seconds(2))
        let error = await run.fatalError()
        guard case .maxRetriesReached(let last) = error else {
            Issue.record("expected maxRetriesReached, got \(String(describing: error))")
            return
        }
        #expect(last.lowercased().contains("refused"), "\(last)")
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
         tls: TLSConfiguration = .makeClientConfiguration()) {
        let url = try! LoginUrl(apiUrl: "\(scheme)://\(host):\(port)", mode: .client, token: PortalChannelTransportTests.token,
                                device: .init(id: "device-1", name: "test-device"))
        let userAgent = UserAgent(osType: "Debian", osVersion: "12.0.0", component: .headlessClient, version: "1.5.5",
                                  architecture: "x86_64", kernelRelease: "6.1.0-test")
        let logs = NIOLockedValueBox<[String]>([])
        var logger = Logger(label: "test") { _ in CapturingLogHandler(lines: logs) }
        logger.logLevel = .trace
        channel = PortalChannel(
            configuration: .init(url: url, publicKey: "cHVibGljLWtleQ==", userAgent: userAgent, maxElapsed: maxElapsed, tls: tls,
                                 executor: ThreadPerJobExecutor.shared),
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
        #expect(!everything.contains { $0.contains("token=") }, sourceLocation: sourceLocation)
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
