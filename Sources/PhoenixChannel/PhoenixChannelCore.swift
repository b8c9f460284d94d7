import FoundationEssentials
import SansIO

/// The portal channel's state machine without IO (spec `portal-phoenix.md` §1.6–§1.9 and the newer rules of
/// §8): one join per connection with a 5 s timeout, nothing but heartbeats before the join reply, a heartbeat
/// every 10 s whatever else is sent and a reconnect when more than 3 go unanswered, a 32-message queue that
/// refuses exact duplicates, reply and error handling, and reconnects with ``ReconnectBackoff`` (the
/// initial-connect schedule until the first join, `Retry-After` when the portal names a delay). Only 401 on
/// the upgrade is fatal. The owner opens the WebSocket when asked, feeds frames and failures in, and sends what
/// ``pollOutput(now:)`` returns. Frames are decoded once, straight into the role's `Message` type.
public struct PhoenixChannelCore<Message: PhoenixPayload>: Sendable {
    public static var joinTimeout: Duration { .seconds(5) }
    public static var heartbeatInterval: Duration { .seconds(10) }
    /// More unanswered heartbeats than this reconnect.
    public static var maxUnansweredHeartbeats: Int { 3 }
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
    /// How long to keep reconnecting once joined; `nil` forever.
    public let maxElapsed: Duration?
    private let heartbeatInterval: Duration
    private var state = State.idle
    /// Whether a join ever succeeded: picks the backoff schedule.
    private var hasJoined = false
    private var backoff: ReconnectBackoff?
    private var connection = Connection(now: Instant(nanoseconds: 0), heartbeatInterval: .zero)
    private var queue: [QueuedMessage] = []
    private var outputs: [Output] = []
    /// Frames dropped because they did not decode.
    public private(set) var malformedFrameCount = 0

    /// - Parameter heartbeatInterval: Firezone's 10 s unless a test needs it shorter.
    public init(topic: String, joinPayload: String = "null", maxElapsed: Duration?,
                heartbeatInterval: Duration = Self.heartbeatInterval) {
        self.topic = topic
        self.joinPayload = joinPayload
        self.maxElapsed = maxElapsed
        self.heartbeatInterval = heartbeatInterval
    }

    /// Starts (or restarts) connecting at once, with a fresh backoff.
    public mutating func connect() {
        backoff = nil
        state = .connecting
        outputs.append(.openConnection)
    }

    /// Drops the connection and connects again at once with a fresh backoff: the v1 answer to having no relays,
    /// and what a reset (a new public key) needs.
    public mutating func reconnect(reason: String) {
        guard state != .closed, state != .idle else { return }
        backoff = nil
        state = .connecting
        outputs.append(.hiccup(delay: .zero, reason: reason))
        outputs.append(.openConnection)
    }

    /// The WebSocket is open: queue the join and start its 5 s timer and the heartbeat timer. Request ids start
    /// from zero on every connection.
    public mutating func connectionOpened(now: Instant) {
        guard state == .connecting else { return }
        state = .connected
        connection = Connection(now: now, heartbeatInterval: heartbeatInterval)
    }

    /// Queues a message for the topic; sent after the join. An exact duplicate of a queued message is not queued
    /// again; a queue already over 32 is dropped first.
    public mutating func send(event: String, payload: String) {
        let message = QueuedMessage(event: event, payload: payload)
        guard !queue.contains(message) else { return }
        if queue.count > Self.maxQueued { queue.removeAll() }
        queue.append(message)
    }

    /// The connection attempt or the connection failed.
    public mutating func connectionFailed(_ failure: ConnectionFailure, now: Instant, unit: Double) {
        guard state == .connecting || state == .connected else { return }
        switch failure {
        case .refused(let refusal) where refusal.status == 401:
            switch refusal.problem?.code {
            case "invalid_token"?, "missing_token"?: stop(.invalidToken)
            default: stop(.authenticationFailed(detail: refusal.problem?.detail ?? "no reason provided"))
            }
        case .refused(let refusal) where refusal.retryAfter != nil:
            waitToReconnect(delay: refusal.retryAfter ?? .zero, reason: failure.description, now: now)
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
            if let join = connection.pendingJoin, now >= join.deadline {
                hiccup("room join timed out", now: now, unit: unit)
                return
            }
            guard now >= connection.heartbeatDue else { return }
            guard connection.unansweredHeartbeats.count < Self.maxUnansweredHeartbeats else {
                hiccup("too many heartbeats were unanswered", now: now, unit: unit)
                return
            }
            connection.heartbeatNeedsSending = true
            while connection.heartbeatDue <= now { connection.heartbeatDue = connection.heartbeatDue + heartbeatInterval }
        default:
            break
        }
    }

    /// When ``handleTimeout(now:unit:)`` must next run.
    public func pollTimeout() -> Instant? {
        switch state {
        case .waitingToReconnect(let until): until
        case .connected: [connection.pendingJoin?.deadline, connection.heartbeatDue].compactMap { $0 }.min()
        default: nil
        }
    }

    /// The next thing to do; call until `nil`.
    public mutating func pollOutput(now: Instant) -> Output? {
        if !outputs.isEmpty { return outputs.removeFirst() }
        guard state == .connected else { return nil }
        if connection.heartbeatNeedsSending {
            connection.heartbeatNeedsSending = false
            let ref = connection.takeRef()
            connection.unansweredHeartbeats.insert(ref)
            return .send(PhoenixFrame(topic: "phoenix", event: "heartbeat", payload: "{}", ref: ref).encoded())
        }
        if connection.joinNeedsSending {
            connection.joinNeedsSending = false
            let ref = connection.takeRef()
            connection.pendingJoin?.ref = ref
            return .send(PhoenixFrame(topic: topic, event: "phx_join", payload: joinPayload, ref: ref).encoded())
        }
        guard connection.pendingJoin == nil, !queue.isEmpty else { return nil }
        let next = queue.removeFirst()
        return .send(PhoenixFrame(topic: topic, event: next.event, payload: next.payload, ref: connection.takeRef()).encoded())
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
        if connection.unansweredHeartbeats.remove(ref) != nil { return }
        let isError = status == "error"
        let reason = reason ?? "other"
        if let join = connection.pendingJoin, join.ref == ref {
            guard !isError else {
                stop(.loginFailed(reason: reason))
                return
            }
            connection.pendingJoin = nil
            hasJoined = true
            backoff = nil
            outputs.append(.joined)
            return
        }
        guard isError else { return }
        if reason == "unmatched topic", topic == self.topic {
            connection.pendingJoin = (nil, now + Self.joinTimeout)
            connection.joinNeedsSending = true
        }
        outputs.append(.errorReply(reason: reason))
    }

    private mutating func hiccup(_ reason: String, now: Instant, unit: Double) {
        var backoff = self.backoff ?? (hasJoined
            ? ReconnectBackoff(schedule: .reconnect, maxElapsed: maxElapsed)
            : ReconnectBackoff(schedule: .initialConnect, maxElapsed: ReconnectBackoff.initialConnectBudget))
        let delay = backoff.nextDelay(now: now, unit: unit)
        self.backoff = backoff
        guard let delay else {
            stop(.maxRetriesReached(lastError: reason))
            return
        }
        waitToReconnect(delay: delay, reason: reason, now: now)
    }

    private mutating func waitToReconnect(delay: Duration, reason: String, now: Instant) {
        state = .waitingToReconnect(until: now + delay)
        outputs.append(.hiccup(delay: delay, reason: reason))
    }

    private mutating func stop(_ error: PhoenixChannelError) {
        state = .closed
        outputs.append(.fatal(error))
    }

    /// What lives and dies with one WebSocket connection.
    private struct Connection: Sendable {
        var nextRef: UInt64 = 0
        var pendingJoin: (ref: UInt64?, deadline: Instant)?
        var joinNeedsSending = true
        var heartbeatDue: Instant
        var heartbeatNeedsSending = false
        var unansweredHeartbeats: Set<UInt64> = []

        init(now: Instant, heartbeatInterval: Duration) {
            pendingJoin = (nil, now + PhoenixChannelCore.joinTimeout)
            heartbeatDue = now + heartbeatInterval
        }

        mutating func takeRef() -> UInt64 {
            defer { nextRef += 1 }
            return nextRef
        }
    }

    private struct QueuedMessage: Sendable, Equatable {
        var event: String
        var payload: String
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
    /// The upgrade was answered with a status other than 101.
    case refused(UpgradeRefusal)
    case invalidPeerCertificate
    /// The portal sent a WebSocket Close frame (the transport echoed it).
    case closedByPortal(code: Int?, reason: String?)
    case network(String)
    case streamEnded

    public var description: String {
        switch self {
        case .refused(let refusal): refusal.description
        case .invalidPeerCertificate: "invalid peer certificate"
        case let .closedByPortal(code?, reason?) where !reason.isEmpty: "the portal sent a WebSocket close frame: \(code) \(reason)"
        case .closedByPortal(let code?, _): "the portal sent a WebSocket close frame: \(code)"
        case .closedByPortal: "the portal sent an empty WebSocket close frame"
        case .network(let reason): reason
        case .streamEnded: "the connection ended"
        }
    }
}

/// Why the channel stopped for good.
public enum PhoenixChannelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 401 with problem details `invalid_token` or `missing_token`: the token is no good.
    case invalidToken
    /// Any other 401: the portal would not authenticate us, for a reason a new token is not known to fix.
    case authenticationFailed(detail: String)
    case invalidPeerCertificate
    case loginFailed(reason: String)
    /// `disconnect` `{"reason":"token_expired"}`.
    case tokenExpired
    case maxRetriesReached(lastError: String)

    /// Whether the stored token must be discarded and the user signed in again (Firezone's `requires_sign_in`).
    public var requiresSignIn: Bool {
        switch self {
        case .invalidToken, .tokenExpired: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .invalidToken: "Authentication token invalid"
        case .authenticationFailed(let detail): "Failed to authenticate with portal: \(detail)"
        case .invalidPeerCertificate: "the portal's certificate is invalid"
        case .loginFailed(let reason): "Failed to login with portal: \(reason)"
        case .tokenExpired: "the token expired"
        case .maxRetriesReached(let last): "Got disconnected from portal and hit the max-retry limit. Last connection error: \(last)"
        }
    }
}
