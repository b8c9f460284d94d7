/// A point in time on a monotonic clock, in nanoseconds from an arbitrary origin: the time value every
/// sans-IO state machine takes as input. Libraries never read a clock; the IO layer passes `now` in, and
/// tests and replays pass whatever time they simulate.
///
/// It is `@frozen` and a plain integer, unlike the standard library's resilient `ContinuousClock.Instant`,
/// whose copies go through runtime calls that measurably slow the per-packet path.
///
/// ```swift
/// var now = Instant(nanoseconds: 0)
/// now = now + .seconds(5)
/// let elapsed: Duration = now - Instant(nanoseconds: 0)   // 5 s
/// ```
@frozen
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: Int64

    @inlinable
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    @inlinable
    public static func < (lhs: Instant, rhs: Instant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// The instant `duration` later (earlier if negative); saturates instead of overflowing.
    @inlinable
    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.totalNanoseconds)
        return Instant(nanoseconds: overflow ? (rhs > .zero ? .max : .min) : sum)
    }

    @inlinable
    public static func - (lhs: Instant, rhs: Duration) -> Instant {
        lhs + (.zero - rhs)
    }

    /// The time from `rhs` to `lhs`.
    @inlinable
    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds)
    }

    /// The time from this instant to `other`.
    @inlinable
    public func duration(to other: Instant) -> Duration {
        other - self
    }

    public var description: String {
        "\(Double(nanoseconds) / 1e9) s"
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at the limits of `Int64` (about ±292 years).
    @inlinable
    public var totalNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds > 0 ? .max : .min }
        let (total, overflowAgain) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        guard !overflowAgain else { return seconds > 0 ? .max : .min }
        return total
    }
}

extension Optional where Wrapped == Instant {
    /// The earlier of two optional deadlines (`nil` only when both are), for combining `pollTimeout()`s
    /// without building an array on every turn of an event loop.
    @inlinable
    public func earliest(_ other: Instant?) -> Instant? {
        guard let self else { return other }
        guard let other else { return self }
        return Swift.min(self, other)
    }
}
