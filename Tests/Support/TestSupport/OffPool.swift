import CLinuxNetlink
import Foundation
import Glibc
import Testing

/// Runs blocking or long CPU-bound work on a thread of its own. Swift Testing runs tests on the concurrency pool,
/// which has one thread per core: on two cores, two long synchronous tests stall every async test of the run
/// (a Phoenix transport test's 20 s silence check fired during such a stall).
public func offPool<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            ProcessNetworkNamespace.join()
            continuation.resume(with: Swift.Result { try body() })
        }.start()
    }
}

/// A new thread inherits the network namespace of the thread that made it, and tests enter namespaces on threads
/// of their own (`TestNamespace.inside`): a thread made from within one would run a later test's sockets and
/// commands in a namespace that test never asked for. Threads made for tests join the process's own first.
enum ProcessNetworkNamespace {
    /// The main thread's namespace (it never enters another), opened once.
    private static let descriptor: Int32 = open("/proc/\(getpid())/task/\(getpid())/ns/net", O_RDONLY | O_CLOEXEC)

    static func join() {
        guard descriptor >= 0 else { return }
        _ = cnetlink_join_network_namespace(descriptor)
    }
}

/// A suite trait for tests that block (waiting for tshark, dig, a Python peer, a namespace's processes) or burn
/// CPU synchronously: each of its tests runs on threads of its own instead of the concurrency pool's two, so
/// the run's timing-sensitive async tests are not starved meanwhile (`offPool` for a whole suite).
public struct OffPoolTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(ThreadPerJobExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OffPoolTrait {
    /// Runs the suite's tests off the concurrency pool: see `OffPoolTrait`.
    public static var offPool: Self { OffPoolTrait() }
}

/// A task executor that starts a thread for every job: a blocking test holds only its own thread. Unstructured
/// tasks do not inherit an executor preference: `Task(executorPreference: ThreadPerJobExecutor.shared)` asks.
public final class ThreadPerJobExecutor: TaskExecutor {
    public static let shared = ThreadPerJobExecutor()

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        Thread {
            ProcessNetworkNamespace.join()
            job.runSynchronously(on: executor)
        }.start()
    }
}
