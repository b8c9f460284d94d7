#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import PhoenixChannel
import SansIO
import Synchronization
import WSClient
import WSCore

/// The portal channel over a real WebSocket: ``PhoenixChannelCore`` driven by a monotonic clock, one
/// swift-websocket connection at a time, reconnecting as the core says. Apps call ``run(_:)`` in a task and
/// ``send(event:payload:)`` / ``close()`` from anywhere. Pushes arrive decoded as the role's `Message`.
public final class PortalChannel<Message: PhoenixPayload>: Sendable {
    /// What the role learns from the channel.
    public enum Event: Sendable {
        /// The topic is joined (after every reconnect too); the portal sends `init` next.
        case joined
        /// A push for the role.
        case message(Message)
        /// A push the role cannot use: an unknown event, or a payload that does not fit its event.
        case unreadable(PhoenixPayloadError)
        /// The portal answered one of the role's messages with an error.
        case errorReply(reason: String)
        /// A transient failure; reconnecting after `delay`.
        case hiccup(delay: Duration, reason: String)
    }

    public struct Configuration: Sendable {
        public var url: LoginUrl
        /// The WireGuard public key, base64: the `public_key` query parameter (a relay has none).
        public var publicKey: String?
        public var userAgent: UserAgent
        /// How long to keep reconnecting after the last good connection; `nil` forever.
        public var maxElapsed: Duration?
        /// The system trust roots unless set; a certificate that does not verify is fatal.
        public var tls: TLSConfiguration
        /// The limit on TCP connect, TLS and the WebSocket upgrade together (Firezone's portal connection: 15 s).
        public var handshakeTimeout: Duration
        /// The largest message accepted (a big `init`); larger closes the connection.
        public var maxMessageSize: Int
        /// Marks the WebSocket's TCP socket (Linux SO_MARK), so a client whose tunnel routes everything (the
        /// Internet resource) still reaches the portal around it, as its UDP sockets do (spec `tunnel-dns.md` §4.11).
        public var firewallMark: UInt32?
        /// Where the channel's own tasks (the connection and the timer) run; `nil` for the global concurrent
        /// executor. A caller whose cooperative pool may be busy for seconds gives it an executor of its own,
        /// so a join reply is not read after its 5 s timeout.
        public var executor: (any TaskExecutor)?
        /// Firezone's 10 s; shorter only in tests.
        public var heartbeatInterval: Duration

        public init(url: LoginUrl, publicKey: String?, userAgent: UserAgent, maxElapsed: Duration?,
                    tls: TLSConfiguration = .makeClientConfiguration(), handshakeTimeout: Duration = .seconds(15),
                    maxMessageSize: Int = 1 << 24, firewallMark: UInt32? = nil, executor: (any TaskExecutor)? = nil,
                    heartbeatInterval: Duration = PhoenixChannelCore<PhoenixRawPayload>.heartbeatInterval) {
            self.url = url
            self.publicKey = publicKey
            self.userAgent = userAgent
            self.maxElapsed = maxElapsed
            self.tls = tls
            self.handshakeTimeout = handshakeTimeout
            self.maxMessageSize = maxMessageSize
            self.firewallMark = firewallMark
            self.executor = executor
            self.heartbeatInterval = heartbeatInterval
        }
    }

    public let configuration: Configuration
    public let topic: String
    /// The `phx_join` payload, JSON.
    public let joinPayload: String
    private let logger: Logger
    private let inputs: AsyncStream<Input>
    private let continuation: AsyncStream<Input>.Continuation
    /// The `public_key` of the next connection: a reset brings a new WireGuard key.
    private let publicKey: Mutex<String?>

    /// - Parameters:
    ///   - topic: `client`, `gateway` or `relay`.
    ///   - joinPayload: `null` for clients and gateways, as Firezone's send it; `{"stamp_secret": …}` for a relay.
    public init(configuration: Configuration, topic: String, joinPayload: String = "null", logger: Logger) {
        self.configuration = configuration
        self.topic = topic
        self.joinPayload = joinPayload
        self.logger = logger
        publicKey = Mutex(configuration.publicKey)
        (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
    }

    /// Queues a message for the topic (sent once joined; at most 32 wait).
    public func send(event: String, payload: String) {
        _ = continuation.yield(.send(event: event, payload: payload))
    }

    /// Drops the connection and connects again at once (a hiccup with `reason`), so the portal sends a fresh
    /// `init`: what a node on the v1 API does when it learns it has no relays (spec `portal-phoenix.md` §5.2), and
    /// what a reset needs, with the new WireGuard public key (§1.9 of `snownet.md`).
    public func reconnect(reason: String, publicKey newKey: String? = nil) {
        if let newKey { publicKey.withLock { $0 = newKey } }
        _ = continuation.yield(.reconnect(reason))
    }

    /// Closes the WebSocket gracefully; ``run(_:)`` then returns.
    public func close() {
        _ = continuation.yield(.close)
    }

    /// Connects and runs until ``close()`` (returns) or a fatal error (throws). Call once.
    public func run(_ onEvent: @Sendable (Event) async -> Void) async throws(PhoenixChannelError) {
        var loop = RunLoop(channel: self)
        defer { loop.stop() }
        loop.core.connect()
        if try await loop.drainOutputs(onEvent) == .closed { return }
        loop.rearmTimer()
        for await input in inputs {
            loop.handle(input)
            if try await loop.drainOutputs(onEvent) == .closed { return }
            loop.rearmTimer()
        }
    }

    enum Input: Sendable {
        case connection(generation: Int, ConnectionEvent)
        case send(event: String, payload: String)
        case reconnect(String)
        case close
        case tick
    }

    enum ConnectionEvent: Sendable {
        case opened(WebSocketOutboundWriter)
        case text(String)
        case binaryIgnored
        case failed(ConnectionFailure)
    }

    /// The mutable state of one ``run(_:)``, owned by its task.
    private struct RunLoop {
        enum Outcome { case running, closed }

        let channel: PortalChannel
        var core: PhoenixChannelCore<Message>
        var generation = 0
        var writer: WebSocketOutboundWriter?
        var connectionTask: Task<Void, Never>?
        var handshakeDeadline: Instant?
        var timerTask: Task<Void, Never>?
        var timerDeadline: Instant?
        let clock = ContinuousClock()
        let origin: ContinuousClock.Instant
        var random = SystemRandomNumberGenerator()

        init(channel: PortalChannel) {
            self.channel = channel
            core = PhoenixChannelCore(topic: channel.topic, joinPayload: channel.joinPayload, maxElapsed: channel.configuration.maxElapsed,
                                      heartbeatInterval: channel.configuration.heartbeatInterval)
            origin = clock.now
        }

        var now: Instant {
            let elapsed = origin.duration(to: clock.now).components
            return Instant(nanoseconds: elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }

        mutating func unit() -> Double { Double.random(in: 0..<1, using: &random) }

        mutating func handle(_ input: Input) {
            switch input {
            case .connection(let generation, let event) where generation == self.generation:
                handle(event)
            case .connection:
                break  // from a connection already given up
            case .send(let event, let payload):
                core.send(event: event, payload: payload)
            case .reconnect(let reason):
                dropConnection()
                core.reconnect(reason: reason)
            case .close:
                core.close()
            case .tick:
                if let deadline = handshakeDeadline, now >= deadline {
                    handshakeDeadline = nil
                    connectionTask?.cancel()
                    core.connectionFailed(.network("the WebSocket handshake timed out after \(channel.configuration.handshakeTimeout)"),
                                          now: now, unit: unit())
                }
                core.handleTimeout(now: now, unit: unit())
            }
        }

        private mutating func handle(_ event: ConnectionEvent) {
            switch event {
            case .opened(let writer):
                self.writer = writer
                handshakeDeadline = nil
                core.connectionOpened(now: now)
            case .text(let text):
                core.received(text, now: now, unit: unit())
            case .binaryIgnored:
                channel.logger.warning("Ignoring a binary frame from the portal")
            case .failed(let failure):
                writer = nil
                handshakeDeadline = nil
                core.connectionFailed(failure, now: now, unit: unit())
            }
        }

        mutating func drainOutputs(_ onEvent: @Sendable (Event) async -> Void) async throws(PhoenixChannelError) -> Outcome {
            while let output = core.pollOutput(now: now) {
                switch output {
                case .openConnection:
                    openConnection()
                case .send(let text):
                    do {
                        try await writer?.write(.text(text))
                    } catch {
                        channel.logger.debug("Sending to the portal failed", metadata: ["error": "\(error)"])
                    }
                case .joined:
                    await onEvent(.joined)
                case .message(let message):
                    await onEvent(.message(message))
                case .unreadable(let error):
                    await onEvent(.unreadable(error))
                case .errorReply(let reason):
                    await onEvent(.errorReply(reason: reason))
                case .hiccup(let delay, let reason):
                    dropConnection()
                    // The apps log the INFO line of the spec (their own target); the library says it once, at DEBUG.
                    channel.logger.debug("Hiccup in portal connection", metadata: ["reason": "\(reason)", "backoff": "\(delay)"])
                    await onEvent(.hiccup(delay: delay, reason: reason))
                case .fatal(let error):
                    dropConnection()
                    throw error
                case .close:
                    if let writer {
                        try? await writer.close(.normalClosure, reason: nil)
                        await connectionTask?.value
                    } else {
                        // Still connecting: nothing to close gracefully, and a connection that opened after this
                        // would never be closed.
                        connectionTask?.cancel()
                    }
                    connectionTask = nil
                    return .closed
                }
            }
            return .running
        }

        mutating func rearmTimer() {
            let deadline = [core.pollTimeout(), handshakeDeadline].compactMap { $0 }.min()
            guard deadline != timerDeadline else { return }
            timerTask?.cancel()
            timerDeadline = deadline
            guard let deadline else { return }
            let wake = origin.advanced(by: .nanoseconds(deadline.nanoseconds))
            let continuation = channel.continuation
            timerTask = Task(executorPreference: channel.configuration.executor) {
                try? await Task.sleep(until: wake, clock: ContinuousClock())
                guard !Task.isCancelled else { return }
                _ = continuation.yield(.tick)
            }
        }

        mutating func stop() {
            connectionTask?.cancel()
            timerTask?.cancel()
        }

        private mutating func dropConnection() {
            connectionTask?.cancel()
            connectionTask = nil
            writer = nil
            handshakeDeadline = nil
        }

        private mutating func openConnection() {
            dropConnection()
            generation += 1
            handshakeDeadline = now + channel.configuration.handshakeTimeout
            connectionTask = Task(executorPreference: channel.configuration.executor) { [channel, generation] in
                await channel.connectOnce(generation: generation)
            }
        }
    }

    /// One connection attempt: resolves the host afresh (so every reconnect re-resolves), upgrades, then
    /// reports frames until the connection ends.
    private func connectOnce(generation: Int) async {
        let report: @Sendable (ConnectionEvent) -> Void = { [continuation] event in
            continuation.yield(.connection(generation: generation, event))
        }
        let url = configuration.url
        do {
            let sslContext = url.scheme == "wss" ? try NIOSSLContext(configuration: configuration.tls) : nil
            let maxMessageSize = configuration.maxMessageSize
            let upgrade = PortalUpgradeChannel(
                host: url.host, requestTarget: url.requestTarget(publicKey: publicKey.withLock { $0 }),
                authorization: url.authorization, userAgent: configuration.userAgent.description, sslContext: sslContext, maxMessageSize: maxMessageSize,
                firewallMark: configuration.firewallMark
            ) { inbound, outbound, _ in
                report(.opened(outbound))
                for try await message in inbound.messages(maxSize: maxMessageSize) {
                    switch message {
                    case .text(let text): report(.text(text))
                    case .binary: report(.binaryIgnored)
                    }
                }
            }
            // swift-websocket's own DEBUG line ("Client connnected to …", misspelt) says less than ours: the
            // connection's INFO "Connected to portal" once joined.
            var connectionLogger = logger
            connectionLogger.logLevel = max(logger.logLevel, .info)
            let closeFrame = try await ClientConnection(upgrade, address: .hostname(url.host, port: url.port), logger: connectionLogger).run()
            if let closeFrame {
                let code = Int(UInt16(webSocketErrorCode: closeFrame.closeCode))
                report(.failed(.closedByPortal(code: code, reason: closeFrame.reason)))
            } else {
                report(.failed(.streamEnded))
            }
        } catch {
            report(.failed(Self.failure(error)))
        }
    }

    static func failure(_ error: any Error) -> ConnectionFailure {
        if let refused = error as? PortalUpgradeRefused {
            let response = refused.response
            return .refused(UpgradeRefusal(status: response.status, headers: response.headers, body: response.body,
                                           unixTime: Int64(time(nil))))
        }
        if case .handshakeFailed(let reason)? = error as? NIOSSLError, "\(reason)".contains("CERTIFICATE_VERIFY_FAILED") {
            return .invalidPeerCertificate
        }
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return .invalidPeerCertificate
        }
        return .network("\(error)")
    }
}

extension PortalChannel.Event: Equatable where Message: Equatable {}
extension PortalChannel.Event: Hashable where Message: Hashable {}
