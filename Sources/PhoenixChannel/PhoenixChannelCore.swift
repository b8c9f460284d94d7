import FoundationEssentials
import SansIO

/// The portal channel's state machine without IO (spec `portal-phoenix.md` §1.6–§1.9): one join per
/// connection with a 5 s timeout, nothing else sent before the join reply, heartbeats after 30 s of silence,
/// a 32-message queue that survives reconnects, reply and error handling, and reconnects with
/// ``ReconnectBackoff``. The owner opens the WebSocket when asked, feeds frames and failures in, and sends
/// what ``pollOutput()`` returns. Frames are decoded once, straight into the role's `Message` type.
public struct PhoenixChannelCore<Message: PhoenixPayload>: Sendable {
    public static var joinTimeout: Duration { .seconds(5) }
    public static var heartbeatInterval: Duration { .seconds(30) }
    public static var maxQueued: Int { 32 }

    /// What the owner must do or learn.
    public enum Output: Sendable {
        /// Open a new WebSocket connection (dropping any current one).
        case openConnection
        /// Send this text frame.
        case send(String)
        /// The topic is joined; queued messages flow.
        case joined
        /// A message for the role (§3/§4).
        case message(Message)
        /// A push for the role that it cannot use: an unknown event, or a payload that does not fit its event.
        case unreadable(PhoenixPayloadError)
        /// The portal answered one of the role's messages with an error.
        case errorReply(reason: String)
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
        let frame: PhoenixInbound<Inbound>
        do {
            frame = try PhoenixInbound(decoding: text)
        } catch {
            malformedFrameCount += 1
            return
        }
        if case .string? = frame.ref {
            malformedFrameCount += 1
            return
        }
        switch frame.payload {
        case .failure where frame.event == "phx_reply":
            malformedFrameCount += 1
        case .failure(let error):
            outputs.append(.unreadable(error))
        case let .success(.reply(status, reason)):
            handleReply(status: status, reason: reason, ref: frame.ref, topic: frame.topic, now: now)
        case .success(.close):
            hiccup("the portal closed the channel", now: now, unit: unit)
        case .success(.disconnect(let reason)) where reason == "token_expired":
            stop(.tokenExpired)
        case .success(.disconnect(let reason)):
            outputs.append(.unreadable(PhoenixPayloadError(event: "disconnect", reason: "reason \(reason ?? "none")")))
        case .success(.channelError):
            break  // the next message gets "unmatched topic", which rejoins
        case .success(.message(let message)):
            outputs.append(.message(message))
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

    private mutating func handleReply(status: String, reason: String?, ref: PhoenixRef?, topic: String, now: Instant) {
        guard case .integer(let ref)? = ref else {
            malformedFrameCount += 1
            return
        }
        let isError = status == "error"
        let reason = reason ?? "other"
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
        if reason == "unmatched topic", topic == self.topic {
            pendingJoin = (nil, now + Self.joinTimeout)
            joinNeedsSending = true
        }
        outputs.append(.errorReply(reason: reason))
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

    /// The channel's own events, and the role's messages.
    enum Inbound: PhoenixPayload {
        case reply(status: String, reason: String?)
        case close
        case disconnect(reason: String?)
        case channelError
        case message(Message)

        init(event: String, payload: any Decoder) throws {
            switch event {
            case "phx_reply":
                let reply = try Reply(from: payload)
                self = .reply(status: reply.status, reason: reply.response?.reason)
            case "phx_close": self = .close
            case "disconnect": self = .disconnect(reason: (try? Reason(from: payload))?.reason)
            case "phx_error": self = .channelError
            default: self = .message(try Message(event: event, payload: payload))
            }
        }

        private struct Reason: Decodable { var reason: String? }
        private struct Reply: Decodable {
            var status: String
            var response: Reason?
        }
    }
}

extension PhoenixChannelCore.Output: Equatable where Message: Equatable {}
extension PhoenixChannelCore.Output: Hashable where Message: Hashable {}

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
