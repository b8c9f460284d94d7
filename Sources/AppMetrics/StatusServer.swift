import Foundation
import Hummingbird
import Logging

/// Serves ``NodeStatus`` as JSON at `GET /status` on a Unix socket that only its owner (root) may open: the
/// socket's directory is made mode 0700 and the socket 0600. `firezone-gateway status` and `firezone-client
/// status` read it with ``StatusSocket/query(_:)``; `curl --unix-socket <path> http://localhost/status` does too.
public final class StatusServer: Sendable {
    public let path: String
    private let server: GracefulServer

    /// Prepares the socket's directory and clears a socket a previous process left behind.
    /// - Throws: ``StatusSocketError`` when the path is unusable or another live process serves it.
    public init(path: String, label: String, status: @escaping @Sendable () async -> NodeStatus) throws(StatusSocketError) {
        try StatusSocket.prepare(path)
        self.path = path
        let router = Router()
        router.get("status") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: await status().json())))
        }
        let app = Application(router: router, configuration: .init(address: .unixDomainSocket(path: path), serverName: nil),
                              onServerRunning: { _ in chmod(path, 0o600) }, logger: Logger(label: label))
        server = GracefulServer(app, logger: Logger(label: label))
    }

    /// Serves until ``shutDown()`` or the task is cancelled, then removes the socket.
    public func run() async throws {
        defer { unlink(path) }
        try await server.run()
    }

    public func shutDown() async {
        await server.shutDown()
    }

    /// Serves the status on `path` until the task is cancelled; a socket that cannot be served costs the process
    /// its status view only, with a warning that says why.
    public static func serve(path: String, label: String, logger: Logger, status: @escaping @Sendable () async -> NodeStatus) async {
        do {
            let server = try StatusServer(path: path, label: label, status: status)
            logger.debug("Serving the status", metadata: ["socket": "\(path)"])
            try await server.run()
        } catch {
            logger.warning("Not serving the status: \(error)")
        }
    }
}

/// Why the status socket cannot be served or read.
public enum StatusSocketError: Error, Equatable, CustomStringConvertible {
    case pathTooLong(String)
    case inUse(String)
    case cannotPrepare(String, reason: String)
    case notRunning(String)
    case permissionDenied(String)
    case unreadable(String, reason: String)

    public var description: String {
        switch self {
        case .pathTooLong(let path): "the status socket path \(path) is longer than a Unix socket allows (107 bytes)"
        case .inUse(let path): "another running process serves the status socket \(path)"
        case let .cannotPrepare(path, reason): "cannot prepare the status socket \(path): \(reason)"
        case .notRunning(let path): "nothing serves the status socket \(path): is the service running (with this --status-socket)?"
        case .permissionDenied(let path): "permission denied on the status socket \(path): run as root"
        case let .unreadable(path, reason): "unreadable answer on the status socket \(path): \(reason)"
        }
    }
}
