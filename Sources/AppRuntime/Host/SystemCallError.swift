#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: what was attempted, on what, and the `errno` it ended with.
public struct SystemCallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was attempted, e.g. `TUNSETIFF tun-firezone`.
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// The error of the call that just failed (reads `errno`).
    static func last(_ operation: String) -> SystemCallError {
        SystemCallError(operation, errno: Glibc.errno)
    }

    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}
