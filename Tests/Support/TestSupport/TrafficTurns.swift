import Glibc

/// End-to-end labs push downloads and iperf3 through namespaces while other tests run; a test that measures how the
/// kernel batches its own traffic (TUN offloads) sees smaller batches under that load. The labs hold this lock
/// shared for their lifetime, and such a test holds it alone. A blocking lock: take it on a thread of its own
/// (``offPool(_:)``), and release it on the thread that took it.
public enum TrafficTurns {
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_rwlock_t> = {
        let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
        return lock
    }()

    /// A lab starts: it shares the network with other labs, not with a test that runs alone.
    public static func beginShared() {
        pthread_rwlock_rdlock(lock)
    }

    public static func endShared() {
        pthread_rwlock_unlock(lock)
    }

    /// Runs `body` while no lab runs.
    public static func alone<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
