import SansIO

/// When to reconnect to the portal (spec `portal-phoenix.md` §1.8): the first failure after a success or a
/// `connect()` retries at once; then exponential backoff from 500 ms × 1.5 with ±50 % jitter, the interval
/// capped at 60 s, until the component's maximum elapsed time is used up.
public struct ReconnectBackoff: Sendable {
    public static let initialInterval = Duration.milliseconds(500)
    public static let multiplier = 1.5
    public static let randomization = 0.5
    public static let maxInterval = Duration.seconds(60)

    /// `nil`: retry forever (the headless client without `--max-partition-time`).
    public let maxElapsed: Duration?
    private var startedAt: Instant?
    private var interval = initialInterval

    public init(maxElapsed: Duration?) {
        self.maxElapsed = maxElapsed
    }

    /// The delay before the next attempt after a transient failure at `now`, or `nil` when retries are used
    /// up (fatal: MaxRetriesReached). `unit` is a uniform random number in [0, 1).
    public mutating func nextDelay(now: Instant, unit: Double) -> Duration? {
        guard let startedAt else {
            startedAt = now
            return .zero
        }
        let elapsed = now - startedAt
        if let maxElapsed, elapsed > maxElapsed { return nil }
        let current = interval
        let low = current * (1 - Self.randomization)
        let delay = low + current * (2 * Self.randomization * unit)
        interval = min(current * Self.multiplier, Self.maxInterval)
        if let maxElapsed, elapsed + delay > maxElapsed { return nil }
        return delay
    }

    /// A WebSocket connection succeeded, or `connect()` was called: start over.
    public mutating func reset() {
        startedAt = nil
        interval = Self.initialInterval
    }
}
