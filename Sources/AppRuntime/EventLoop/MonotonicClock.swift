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
}
