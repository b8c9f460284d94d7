import SansIO

/// When to reconnect to the portal (spec `portal-phoenix.md` §1.8, §8): exponential backoff with jitter until
/// the component's maximum elapsed time is used up. A channel that has never joined uses
/// ``Schedule/initialConnect`` (1 s apart, for 15 s); once it has joined, ``Schedule/reconnect`` (from 500 ms
/// × 1.5 with ±50 % jitter, the interval capped at 60 s) for the component's partition time.
public struct ReconnectBackoff: Sendable {
    /// The shape of the delays.
    public struct Schedule: Sendable, Hashable {
        public var initialInterval: Duration
        public var multiplier: Double
        /// The delay is uniform in [(1 − r)·i, (1 + r)·i] for the current interval i.
        public var randomization: Double
        /// Caps the interval, not the jittered delay: the longest delay is (1 + r)·max.
        public var maxInterval: Duration

        public init(initialInterval: Duration, multiplier: Double, randomization: Double, maxInterval: Duration) {
            self.initialInterval = initialInterval
            self.multiplier = multiplier
            self.randomization = randomization
            self.maxInterval = maxInterval
        }

        /// The `backoff` crate's defaults, which Firezone's components use once connected.
        public static let reconnect = Schedule(initialInterval: .milliseconds(500), multiplier: 1.5, randomization: 0.5,
                                               maxInterval: .seconds(60))
        /// Before the first successful join (#11625): a constant second, no jitter.
        public static let initialConnect = Schedule(initialInterval: .seconds(1), multiplier: 1, randomization: 0,
                                                    maxInterval: .seconds(1))
    }

    /// How long a channel that has never joined keeps trying.
    public static let initialConnectBudget = Duration.seconds(15)

    public let schedule: Schedule
    /// `nil`: retry forever (the headless client without `--max-partition-time`).
    public let maxElapsed: Duration?
    private var startedAt: Instant?
    private var interval: Duration

    public init(schedule: Schedule = .reconnect, maxElapsed: Duration?) {
        self.schedule = schedule
        self.maxElapsed = maxElapsed
        interval = schedule.initialInterval
    }

    /// The delay before the next attempt after a transient failure at `now`, or `nil` when retries are used
    /// up (fatal: MaxRetriesReached). The elapsed time counts from the first failure. `unit` is a uniform
    /// random number in [0, 1).
    public mutating func nextDelay(now: Instant, unit: Double) -> Duration? {
        let startedAt = self.startedAt ?? now
        self.startedAt = startedAt
        let elapsed = now - startedAt
        if let maxElapsed, elapsed > maxElapsed { return nil }
        let current = interval
        let low = current * (1 - schedule.randomization)
        let delay = low + current * (2 * schedule.randomization * unit)
        interval = min(current * schedule.multiplier, schedule.maxInterval)
        if let maxElapsed, elapsed + delay > maxElapsed { return nil }
        return delay
    }

    /// The channel joined, or `connect()` was called: start over.
    public mutating func reset() {
        startedAt = nil
        interval = schedule.initialInterval
    }
}
