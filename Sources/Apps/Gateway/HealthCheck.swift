import Hummingbird
import Logging
import SansIO

/// The health-check server (spec §7.1): `GET /healthz` answers 200 (always healthy), `GET /metrics` the
/// gateway's metrics in Prometheus' text format.
enum HealthCheck {
    static func serve(at address: SocketAddress, logger: Logger, metrics: @escaping @Sendable () async -> String) async throws {
        let router = Router()
        router.get("healthz") { _, _ in HTTPResponse.Status.ok }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: await metrics())))
        }
        let host: String = switch address.ip { case .v4(let v4): "\(v4)"; case .v6(let v6): "\(v6)" }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: Int(address.port)), serverName: nil),
                              logger: Logger(label: "firezone_gateway::health"))
        try await app.runService()
    }
}
