import CLinuxNetlink
import Foundation
import TestSupport

/// A network namespace the test creates (`ip netns add`) and removes, and a way to run code inside it: on a
/// thread of its own that joins the namespace with `setns`, so sockets and devices created there belong to it,
/// while the Swift concurrency pool is never blocked or moved.
final class TestNamespace: Sendable {
    let name: String

    init(_ label: String) throws {
        name = "fz\(label)\(getpid() % 100_000)"
        _ = try? Shell.run("ip", "netns", "del", name, allowFailure: true)
        try Shell.run("ip", "netns", "add", name)
        try Shell.run("ip", "-n", name, "link", "set", "lo", "up")
    }

    func remove() {
        _ = try? Shell.run("ip", "netns", "del", name, allowFailure: true)
    }

    /// `ip -n <namespace> <arguments>`: its output.
    func ip(_ arguments: String...) throws -> String {
        try Shell.run(["ip", "-n", name] + arguments).output
    }

    /// Runs `body` on a new thread inside the namespace and returns its result.
    func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        let path = "/var/run/netns/\(name)"
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0, cnetlink_join_network_namespace(fd) == 0 else {
                    continuation.resume(throwing: ShellError.failed("setns \(path)", String(cString: strerror(errno))))
                    return
                }
                close(fd)
                continuation.resume(with: Swift.Result { try body() })
            }.start()
        }
    }
}
