import SansIO

/// When a STUN client transaction retransmits and when it gives up (spec §3.3): first retry after 1 s,
/// the interval ×1.5 each time, abandoned once the next retry would come after 8 s. Sends at 0, 1.0, 2.5 and
/// 4.75 s; abandoned at 8.125 s.
public struct StunRetransmission: Hashable, Sendable {
    public let initialInterval: Duration
    public let multiplier: Double
    public let maxElapsed: Duration

    /// The schedule of every TURN and BINDING request.
    public static let standard = StunRetransmission(initialInterval: .seconds(1), multiplier: 1.5, maxElapsed: .seconds(8))
    /// A 1-second liveness probe (`refresh()` of an allocation): one send, abandoned after 1 s.
    public static let probe = StunRetransmission(initialInterval: .seconds(1), multiplier: 1, maxElapsed: .seconds(1))

    public init(initialInterval: Duration, multiplier: Double, maxElapsed: Duration) {
        self.initialInterval = initialInterval
        self.multiplier = multiplier
        self.maxElapsed = maxElapsed
    }
}

/// The timers of one outstanding request: sans-IO, driven by `handleTimeout(now:)`.
///
/// ```swift
/// var transaction = StunTransaction(schedule: .standard, now: now)   // the caller sends the request now
/// …
/// switch transaction.handleTimeout(now: now) {
/// case .retransmit: send(request)        // re-sign with a new transaction id if authenticated
/// case .abandon: giveUp()
/// case .wait: break
/// }
/// ```
public struct StunTransaction: Hashable, Sendable {
    public let schedule: StunRetransmission
    public let startedAt: Instant
    /// When the next retransmission (or abandonment) is due.
    public private(set) var deadline: Instant
    private var interval: Duration
    /// How many times the request was sent, the first send included.
    public private(set) var transmissions = 1

    public enum Action: Hashable, Sendable {
        case wait
        case retransmit
        case abandon
    }

    public init(schedule: StunRetransmission = .standard, now: Instant) {
        self.schedule = schedule
        startedAt = now
        interval = schedule.initialInterval
        deadline = now + schedule.initialInterval
    }

    public mutating func handleTimeout(now: Instant) -> Action {
        guard now >= deadline else { return .wait }
        guard deadline - startedAt < schedule.maxElapsed else { return .abandon }
        interval = interval * schedule.multiplier
        deadline = deadline + interval
        transmissions += 1
        return .retransmit
    }
}
