import Hummingbird
import Logging
import SansIO
import ServiceLifecycle

/// The health-check server of the gateway and the relay (spec `portal-phoenix.md` §7.1): `GET /healthz` answers
/// 200 (always healthy), `GET /readyz` 200 once `ready` says so (503 before), `GET /metrics` the app's metrics in
/// Prometheus' text format. ``run()`` serves until ``shutDown()``, which closes it gracefully.
public final class HealthCheck: Sendable {
    private let group: ServiceGroup

    public init(at address: SocketAddress, label: String, ready: @escaping @Sendable () -> Bool = { true },
                metrics: @escaping @Sendable () async -> String) {
        let router = Router()
        router.get("healthz") { _, _ in HTTPResponse.Status.ok }
        router.get("readyz") { _, _ in ready() ? HTTPResponse.Status.ok : .serviceUnavailable }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: await metrics())))
        }
        let host: String = switch address.ip { case .v4(let v4): "\(v4)"; case .v6(let v6): "\(v6)" }
        let logger = Logger(label: label)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: Int(address.port)), serverName: nil),
                              logger: logger)
        group = ServiceGroup(configuration: .init(services: [app], logger: logger))
    }

    /// Serves until ``shutDown()`` or the task is cancelled (returns after a graceful shutdown), or until the address
    /// cannot be bound (throws).
    public func run() async throws {
        // The server runs in a task of its own that the caller's cancellation does not reach: cancelled directly,
        // Hummingbird logs errors about its closed channels. Cancellation shuts it down gracefully instead.
        let group = group
        let server = Task { try await group.run() }
        try await withTaskCancellationHandler {
            try await server.value
        } onCancel: {
            Task { await group.triggerGracefulShutdown() }
        }
    }

    /// Finishes the requests in progress and stops ``run()``.
    public func shutDown() async {
        await group.triggerGracefulShutdown()
    }
}
