import Hummingbird
import Logging
import SansIO

/// The health-check server of the gateway and the relay (spec `portal-phoenix.md` §7.1): `GET /healthz` answers
/// 200 (always healthy), `GET /readyz` 200 once `ready` says so (503 before), `GET /metrics` the app's metrics in
/// Prometheus' text format. ``run()`` serves until ``shutDown()``, which closes it gracefully.
public final class HealthCheck: Sendable {
    private let server: GracefulServer

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
        server = GracefulServer(app, logger: logger)
    }

    /// Serves until ``shutDown()`` or the task is cancelled (returns after a graceful shutdown), or until the address
    /// cannot be bound (throws).
    public func run() async throws {
        try await server.run()
    }

    /// Finishes the requests in progress and stops ``run()``.
    public func shutDown() async {
        await server.shutDown()
    }
}
