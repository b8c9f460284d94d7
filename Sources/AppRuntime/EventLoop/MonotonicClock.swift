#if canImport(Glibc)
import Glibc
#endif
import SansIO

/// The monotonic clock the loop reads once per batch.
public enum MonotonicClock {
    public static func now() -> Instant {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Instant(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// `epoll_wait`'s timeout for a deadline: -1 for none, rounded up to whole milliseconds.
    public static func milliseconds(until deadline: Instant?, from now: Instant) -> Int32 {
        guard let deadline else { return -1 }
        let nanoseconds = (deadline - now).totalNanoseconds
        guard nanoseconds > 0 else { return 0 }
        return Int32(clamping: (nanoseconds + 999_999) / 1_000_000)
    }
}
