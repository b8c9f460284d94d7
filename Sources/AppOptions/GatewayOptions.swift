import AppRuntime
import ArgumentParser
import Foundation
import PhoenixChannel
import SansIO

/// `firezone-gateway`'s command line (spec `portal-phoenix.md` §7.1); each flag falls back to its variable.
public struct GatewayArguments: ParsableArguments {
    @Argument(help: "The portal token (or FIREZONE_TOKEN, or the systemd credential FIREZONE_TOKEN).")
    public var token: String?
    @Option(name: [.customShort("u"), .long], help: .hidden)
    public var apiUrl: String?
    @Option(name: [.customShort("n"), .customLong("firezone-name")], help: "Name shown in the portal (FIREZONE_NAME; default: hostname).")
    public var firezoneName: String?
    @Option(name: [.customShort("i"), .customLong("firezone-id")], help: "Persistent ID (FIREZONE_ID; default: derived).")
    public var firezoneId: String?
    @Option(help: "human or json (FIREZONE_LOG_FORMAT).")
    public var logFormat: String?
    @Flag(help: "Turn off crash reporting and analytics (FIREZONE_NO_TELEMETRY).")
    public var noTelemetry = false
    @Flag(help: "Skip the root / CAP_NET_ADMIN check.")
    public var noCheck = false
    @Flag(help: "Do not raise net.core.rmem_max and wmem_max (FIREZONE_NO_INC_BUF).")
    public var noIncBuf = false
    @Option(help: .hidden)
    public var healthCheckAddr: String?
    @Option(help: .hidden)
    public var metrics: String?
    @Flag(help: .hidden)
    public var validateChecksums = false
    @Option(name: [.customShort("m"), .long],
            help: "Keep serving established tunnels and retrying the portal this long, e.g. 5m, 1h, 30d (FIREZONE_MAX_PARTITION_TIME; default 24h).")
    public var maxPartitionTime: String?
    @Option(help: "The portal API: v2, or v1 for portals before mid-2026 (FIREZONE_PORTAL_API; default v2).")
    public var portalApi: String?
    @Option(help: "Where `firezone-gateway status` reads the connections from; empty turns it off (FIREZONE_STATUS_SOCKET; default /run/firezone-gateway/status.sock).")
    public var statusSocket: String?

    public init() {}
}

/// Where metrics go (`--metrics`).
public enum MetricsExporter: String, Sendable, CaseIterable {
    case stdout
    case otelCollector = "otel-collector"
}

/// Everything the gateway runs with, after flags, variables, the credential and the defaults.
public struct GatewayConfiguration: Equatable, Sendable {
    public var apiUrl = "wss://api.firezone.dev"
    public var token: String
    public var name: String
    /// `nil`: derive the ID (`/var/lib/firezone/gateway_id` or `/etc/machine-id`).
    public var id: String?
    public var logFormat = LogFormat.human
    /// `RUST_LOG`, default `info`.
    public var logFilter = "info"
    public var telemetry = true
    public var checkPrivileges = true
    public var raiseSocketBuffers = true
    /// The UDP socket buffers asked for, and what `rmem_max`/`wmem_max` are raised to.
    public var socketBuffers = SocketBufferSizes()
    public var healthCheckAddress = SocketAddress("0.0.0.0:8080")!
    public var metrics: MetricsExporter?
    public var validateChecksums = false
    /// How long to keep reconnecting to the portal, serving established tunnels meanwhile (#11664).
    public var maxPartitionTime = Duration.seconds(86_400)
    public var portalApi = PortalApi.v2
    /// `WGKEYLOGFILE`: where to write the WireGuard key log; `nil` (the default) writes none.
    public var keyLogFile: String?
    /// The Unix socket the status is served on; `nil` serves none.
    public var statusSocket: String? = "/run/firezone-gateway/status.sock"

    /// The defaults, with the token and the name.
    public init(token: String, name: String) {
        self.token = token
        self.name = name
    }

    /// Resolves the command line against the environment. `readFile` reads the systemd credential (tests pass
    /// their own); `hostname` names the gateway when nothing else does.
    public static func resolve(_ arguments: GatewayArguments, environment: [String: String], hostname: String,
                               readFile: (String) -> String? = Self.readFile) throws(OptionError) -> GatewayConfiguration {
        let settings = Settings(environment: environment)
        var token = arguments.token ?? environment["FIREZONE_TOKEN"]
        if token == nil { token = try Self.credential(environment, readFile) }
        var configuration = GatewayConfiguration(token: token ?? "", name: settings.string(arguments.firezoneName, "FIREZONE_NAME") ?? hostname)
        if let url = settings.string(arguments.apiUrl, "FIREZONE_API_URL") { configuration.apiUrl = url }
        configuration.id = settings.string(arguments.firezoneId, "FIREZONE_ID").flatMap { $0.isEmpty ? nil : $0 }
        configuration.logFormat = try settings.oneOf(arguments.logFormat, "FIREZONE_LOG_FORMAT", name: "--log-format", default: .human)
        configuration.logFilter = environment["RUST_LOG"] ?? "info"
        configuration.socketBuffers = try settings.socketBuffers()
        configuration.telemetry = try !settings.bool(arguments.noTelemetry, "FIREZONE_NO_TELEMETRY")
        configuration.checkPrivileges = !arguments.noCheck
        configuration.raiseSocketBuffers = try !settings.bool(arguments.noIncBuf, "FIREZONE_NO_INC_BUF")
        if let text = settings.string(arguments.healthCheckAddr, "HEALTH_CHECK_ADDR") {
            guard let address = SocketAddress(text) else {
                throw .invalidValue(name: "--health-check-addr", value: text, expected: "an address:port")
            }
            configuration.healthCheckAddress = address
        }
        if arguments.metrics != nil || environment["FIREZONE_METRICS"] != nil {
            configuration.metrics = try settings.oneOf(arguments.metrics, "FIREZONE_METRICS", name: "--metrics", default: MetricsExporter.stdout)
        }
        configuration.validateChecksums = try settings.bool(arguments.validateChecksums, "FIREZONE_VALIDATE_CHECKSUMS")
        if let text = settings.string(arguments.maxPartitionTime, "FIREZONE_MAX_PARTITION_TIME") {
            guard let duration = HumanDuration.parse(text) else {
                throw .invalidValue(name: "--max-partition-time", value: text, expected: "a duration such as 5m, 1h or 30d")
            }
            configuration.maxPartitionTime = duration
        }
        configuration.portalApi = try settings.oneOf(arguments.portalApi, "FIREZONE_PORTAL_API", name: "--portal-api", default: .v2)
        configuration.keyLogFile = environment["WGKEYLOGFILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let path = settings.string(arguments.statusSocket, "FIREZONE_STATUS_SOCKET") { configuration.statusSocket = path.isEmpty ? nil : path }
        return configuration
    }

    /// `$CREDENTIALS_DIRECTORY/FIREZONE_TOKEN`, trimmed.
    private static func credential(_ environment: [String: String], _ readFile: (String) -> String?) throws(OptionError) -> String {
        guard let directory = environment["CREDENTIALS_DIRECTORY"],
              let text = readFile(directory + "/FIREZONE_TOKEN")
        else { throw .gatewayTokenMissing }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public static func readFile(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }
}
