import FoundationEssentials
import SansIO

/// The portal channel's state machine without IO (spec `portal-phoenix.md` §1.6–§1.9): one join per
/// connection with a 5 s timeout, nothing else sent before the join reply, heartbeats after 30 s of silence,
/// a 32-message queue that survives reconnects, reply and error handling, and reconnects with
/// ``ReconnectBackoff``. The owner opens the WebSocket when asked, feeds frames and failures in, and sends
/// what ``pollOutput()`` returns.
public struct PhoenixChannelCore: Sendable {
    public static let joinTimeout = Duration.seconds(5)
    public static let heartbeatInterval = Duration.seconds(30)
    public static let maxQueued = 32

    /// What the owner must do or learn.
    public enum Output: Sendable, Hashable {
        /// Open a new WebSocket connection (dropping any current one).
        case openConnection
        /// Send this text frame.
        case send(String)
        /// The topic is joined; queued messages flow.
        case joined
        /// A message for the role (§3/§4) or a reply the role cares about.
        case message(PhoenixFrame)
        /// A transient failure: reconnecting after `delay`.
        case hiccup(delay: Duration, reason: String)
        /// A fatal failure: the channel stopped.
        case fatal(PhoenixChannelError)
        /// Close the WebSocket (graceful close); the channel is closed.
        case close
    }

    private enum State: Sendable, Equatable {
        case idle, connecting, connected, waitingToReconnect(until: Instant), closed
    }

    public let topic: String
    public let joinPayload: String
    private var state = State.idle
    private var backoff: ReconnectBackoff
    private var nextRef: UInt64 = 0
    private var pendingJoin: (ref: UInt64?, deadline: Instant)?
    private var joinNeedsSending = false
    private var heartbeatDue: Instant?
    private var queue: [(event: String, payload: String, topic: String)] = []
    private var outputs: [Output] = []
    /// Frames dropped because they did not decode.
    public private(set) var malformedFrameCount = 0

    public init(topic: String, joinPayload: String = "null", maxElapsed: Duration?) {
        self.topic = topic
        self.joinPayload = joinPayload
        backoff = ReconnectBackoff(maxElapsed: maxElapsed)
    }

    /// Starts (or restarts) connecting at once, with a fresh backoff.
    public mutating func connect() {
        backoff.reset()
        state = .connecting
        outputs.append(.openConnection)
    }

    /// The WebSocket is open: queue the join and start its 5 s timer and the heartbeat timer.
    public mutating func connectionOpened(now: Instant) {
        guard state == .connecting else { return }
        state = .connected
        backoff.reset()
        pendingJoin = (nil, now + Self.joinTimeout)
        joinNeedsSending = true
        heartbeatDue = now + Self.heartbeatInterval
    }

    /// Queues a message for the topic; sent after the join. A queue already over 32 is dropped first.
    public mutating func send(event: String, payload: String) {
        if queue.count > Self.maxQueued { queue.removeAll() }
        queue.append((event, payload, topic))
    }

    /// The connection failed or ended. `status` is the HTTP status of a refused upgrade, if any.
    public mutating func connectionFailed(_ failure: ConnectionFailure, now: Instant, unit: Double) {
        guard state == .connecting || state == .connected else { return }
        switch failure {
        case .httpStatus(let status) where (400..<500).contains(status):
            stop(.rejected(status: status))
        case .invalidPeerCertificate:
            stop(.invalidPeerCertificate)
        default:
            hiccup(failure.description, now: now, unit: unit)
        }
    }

    /// A text frame arrived.
    public mutating func received(_ text: String, now: Instant, unit: Double) {
        guard state == .connected else { return }
        let frame: PhoenixFrame
        do {
            frame = try PhoenixFrame(decoding: text)
        } catch {
            malformedFrameCount += 1
            return
        }
        switch frame.event {
        case "phx_reply":
            handleReply(frame, now: now)
        case "phx_close":
            hiccup("the portal closed the channel", now: now, unit: unit)
        case "disconnect" where Self.decode(Reason.self, frame.payload)?.reason == "token_expired":
            stop(.tokenExpired)
        case "phx_error":
            break  // the next message gets "unmatched topic", which rejoins
        default:
            outputs.append(.message(frame))
        }
    }

    /// Advances timers: the join timeout, the heartbeat, the reconnect delay.
    public mutating func handleTimeout(now: Instant, unit: Double) {
        switch state {
        case .waitingToReconnect(let until) where now >= until:
            state = .connecting
            outputs.append(.openConnection)
        case .connected:
            if let join = pendingJoin, now >= join.deadline {
                hiccup("room join timed out", now: now, unit: unit)
                return
            }
            if let due = heartbeatDue, now >= due {
                queue.append(("heartbeat", "{}", "phoenix"))
                heartbeatDue = nil
            }
        default:
            break
        }
    }

    /// When ``handleTimeout(now:unit:)`` must next run.
    public func pollTimeout() -> Instant? {
        switch state {
        case .waitingToReconnect(let until): until
        case .connected: [pendingJoin?.deadline, heartbeatDue].compactMap { $0 }.min()
        default: nil
        }
    }

    /// The next thing to do; call until `nil`. Sending restarts the heartbeat timer.
    public mutating func pollOutput(now: Instant) -> Output? {
        if !outputs.isEmpty { return outputs.removeFirst() }
        guard state == .connected else { return nil }
        if joinNeedsSending {
            joinNeedsSending = false
            let ref = takeRef()
            pendingJoin?.ref = ref
            return sent(PhoenixFrame(topic: topic, event: "phx_join", payload: joinPayload, ref: pendingJoin?.ref), now: now)
        }
        guard pendingJoin == nil, !queue.isEmpty else { return nil }
        let next = queue.removeFirst()
        return sent(PhoenixFrame(topic: next.topic, event: next.event, payload: next.payload, ref: takeRef()), now: now)
    }

    /// Graceful close (the gateway on SIGTERM).
    public mutating func close() {
        state = .closed
        outputs.append(.close)
    }

    private mutating func handleReply(_ frame: PhoenixFrame, now: Instant) {
        guard let ref = frame.ref else {
            malformedFrameCount += 1
            return
        }
        guard let reply = Self.decode(Reply.self, frame.payload) else {
            malformedFrameCount += 1
            return
        }
        let isError = reply.status == "error"
        let reason = reply.response?.reason ?? "other"
        if let join = pendingJoin, join.ref == ref {
            guard !isError else {
                stop(.loginFailed(reason: reason))
                return
            }
            pendingJoin = nil
            outputs.append(.joined)
            return
        }
        guard isError else { return }
        if reason == "unmatched topic", frame.topic == topic {
            pendingJoin = (nil, now + Self.joinTimeout)
            joinNeedsSending = true
        }
        outputs.append(.message(frame))
    }

    private mutating func hiccup(_ reason: String, now: Instant, unit: Double) {
        pendingJoin = nil
        joinNeedsSending = false
        heartbeatDue = nil
        guard let delay = backoff.nextDelay(now: now, unit: unit) else {
            stop(.maxRetriesReached(lastError: reason))
            return
        }
        state = .waitingToReconnect(until: now + delay)
        outputs.append(.hiccup(delay: delay, reason: reason))
    }

    private mutating func stop(_ error: PhoenixChannelError) {
        state = .closed
        outputs.append(.fatal(error))
    }

    private mutating func sent(_ frame: PhoenixFrame, now: Instant) -> Output {
        heartbeatDue = now + Self.heartbeatInterval
        return .send(frame.encoded())
    }

    private mutating func takeRef() -> UInt64 {
        defer { nextRef += 1 }
        return nextRef
    }

    private struct Reason: Decodable { var reason: String? }
    private struct Reply: Decodable {
        var status: String
        var response: Reason?
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ payload: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(payload.utf8))
    }
}

/// Why a connection attempt or connection failed.
public enum ConnectionFailure: Sendable, Hashable, CustomStringConvertible {
    case httpStatus(Int)
    case invalidPeerCertificate
    case network(String)
    case streamEnded

    public var description: String {
        switch self {
        case .httpStatus(let status): "the portal answered HTTP \(status)"
        case .invalidPeerCertificate: "invalid peer certificate"
        case .network(let reason): reason
        case .streamEnded: "the connection ended"
        }
    }
}

/// Why the channel stopped for good.
public enum PhoenixChannelError: Error, Sendable, Hashable, CustomStringConvertible {
    case rejected(status: Int)
    case invalidPeerCertificate
    case loginFailed(reason: String)
    case tokenExpired
    case maxRetriesReached(lastError: String)

    /// Sign-out material: 401/403 on upgrade, or an expired token.
    public var isAuthenticationError: Bool {
        switch self {
        case .rejected(let status): status == 401 || status == 403
        case .tokenExpired: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .rejected(let status): "Failed to establish WebSocket connection: HTTP \(status)"
        case .invalidPeerCertificate: "the portal's certificate is invalid"
        case .loginFailed(let reason): "joining the portal channel failed: \(reason)"
        case .tokenExpired: "the token expired"
        case .maxRetriesReached(let last): "gave up reconnecting to the portal; last error: \(last)"
        }
    }
}
