import CLinuxNetlink
import Foundation
import Synchronization

/// Tests run in parallel: every namespace and device name gets a number of its own.
private let names = Atomic<Int>(0)

/// A name no other test of this process uses: `prefix`, the process ID and a counter (short enough for devices).
public func uniqueName(_ prefix: String) -> String {
    "\(prefix)\(getpid() % 10_000)n\(names.add(1, ordering: .relaxed).newValue)"
}

/// A network namespace the test creates (`ip netns add`) and removes, and a way to run code inside it: on a
/// thread of its own that joins the namespace with `setns`, so sockets and devices created there belong to it.
/// Everything here blocks; tests reach it through ``with(_:_:)``, off the concurrency pool.
public final class TestNamespace: Sendable {
    public let name: String

    public init(_ label: String) throws {
        name = uniqueName("fz\(label)")
        _ = try? Shell.run("ip", "netns", "del", name, allowFailure: true)
        try Shell.run("ip", "netns", "add", name)
        try Shell.run("ip", "-n", name, "link", "set", "lo", "up")
    }

    /// Creates a namespace, runs `body` with it off the concurrency pool, and removes it again.
    public static func with<Result: Sendable>(_ label: String, _ body: @escaping @Sendable (TestNamespace) throws -> Result) async throws
        -> Result {
        try await offPool {
            let namespace = try TestNamespace(label)
            defer { namespace.remove() }
            return try body(namespace)
        }
    }

    public func remove() {
        _ = try? Shell.run("ip", "netns", "del", name, allowFailure: true)
    }

    /// `ip -n <namespace> <arguments>`: its output.
    public func ip(_ arguments: String...) throws -> String {
        try Shell.run(["ip", "-n", name] + arguments).output
    }

    /// Runs `body` on a new thread inside the namespace and waits for its result.
    public func inside<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) throws -> Result {
        let path = "/var/run/netns/\(name)"
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Swift.Result<Result, any Error>?
        Thread {
            defer { done.signal() }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, cnetlink_join_network_namespace(fd) == 0 else {
                outcome = .failure(ShellError.failed("setns \(path)", String(cString: strerror(errno))))
                return
            }
            close(fd)
            outcome = Swift.Result { try body() }
        }.start()
        done.wait()
        return try outcome!.get()
    }
}

/// The replies ping counted ("4 packets transmitted, 4 received"): with `-c 3 -w`, ping may send a fourth request
/// while the first replies are still on their way, so the count is at least, not exactly, three.
public func pingReplies(_ output: String) -> Int {
    guard let line = output.split(separator: "\n").first(where: { $0.contains(" received") }),
          let field = line.split(separator: ",").first(where: { $0.contains("received") })
    else { return 0 }
    return Int(field.split(separator: " ").first ?? "") ?? 0
}
