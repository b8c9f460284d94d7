import Foundation

/// Runs blocking or long CPU-bound work on a thread of its own. Swift Testing runs tests on the concurrency pool,
/// which has one thread per core: on two cores, two long synchronous tests stall every async test of the run
/// (a Phoenix transport test's 20 s silence check fired during such a stall).
public func offPool<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Swift.Result { try body() }) }.start()
    }
}
