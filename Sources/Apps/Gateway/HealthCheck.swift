import Hummingbird
import Logging
import SansIO

/// `GET /healthz` answers 200 on the health-check address (spec §7.1: always healthy).
enum HealthCheck {
    static func serve(at address: SocketAddress, logger: Logger) async throws {
        let router = Router()
        router.get("healthz") { _, _ in HTTPResponse.Status.ok }
        let host: String = switch address.ip { case .v4(let v4): "\(v4)"; case .v6(let v6): "\(v6)" }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: Int(address.port)), serverName: nil),
                              logger: Logger(label: "firezone_gateway::health"))
        try await app.runService()
    }
}
