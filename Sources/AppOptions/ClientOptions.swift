import AppRuntime
import ArgumentParser
import Foundation
import PhoenixChannel

/// `firezone-client`'s command line (spec `portal-phoenix.md` §7.2); each flag falls back to its variable.
public struct ClientArguments: ParsableArguments {
    @Argument(help: .hidden)
    public var legacySubcommand: String?
    @Option(help: "disabled, etc-resolv-conf or systemd-resolved (FIREZONE_DNS_CONTROL).")
    public var dnsControl: String?
    @Option(name: [.customShort("l"), .long], help: "Also write logs to this directory (LOG_DIR).")
    public var logDir: String?
    @Option(name: [.customShort("m"), .long], help: "Give up reconnecting to the portal after this long, e.g. 30d (MAX_PARTITION_TIME).")
    public var maxPartitionTime: String?
    @Option(name: [.customShort("u"), .long], help: .hidden)
    public var apiUrl: String?
    @Flag(help: .hidden)
    public var check = false
    @Flag(help: .hidden)
    public var exit = false
    @Option(name: .customLong("firezone-name"), help: "Name shown in the portal (FIREZONE_NAME; default: hostname).")
    public var firezoneName: String?
    @Option(name: [.customShort("i"), .customLong("firezone-id")], help: "Persistent ID (FIREZONE_ID).")
    public var firezoneId: String?
    @Flag(help: "Route everything through the Internet resource (FIREZONE_ACTIVATE_INTERNET_RESOURCE).")
    public var activateInternetResource = false
    @Flag(help: "Turn off crash reporting and analytics (FIREZONE_NO_TELEMETRY).")
    public var noTelemetry = false
    @Option(help: .hidden)
    public var metrics: String?
    @Option(help: "The token file (FIREZONE_TOKEN_PATH).")
    public var tokenPath: String?
    @Flag(help: .hidden)
    public var incBuf = false
    @Option(help: "The portal API: v2, or v1 for portals before mid-2026 (FIREZONE_PORTAL_API; default v2).")
    public var portalApi: String?
    @Option(help: "Where `firezone-client status` reads the connections from; empty turns it off (FIREZONE_STATUS_SOCKET; default /run/firezone-client/status.sock).")
    public var statusSocket: String?

    public init() {}

    public func validate() throws {
        guard legacySubcommand == nil || legacySubcommand == "standalone" else {
            throw ValidationError("unexpected argument '\(legacySubcommand!)'")
        }
    }
}

/// How the client points the system's DNS at its sentinels.
public enum DnsControl: String, Sendable, CaseIterable {
    case disabled
    case etcResolvConf = "etc-resolv-conf"
    case systemdResolved = "systemd-resolved"
}

/// Everything the headless client runs with, after flags, variables and the defaults. The token is read
/// separately (``ClientToken``), since `FIREZONE_TOKEN` must leave the environment before anything else runs.
public struct ClientConfiguration: Equatable, Sendable {
    public static let defaultTokenPath = "/etc/dev.firezone.client/token"

    public var apiUrl = "wss://api.firezone.dev/"
    public var dnsControl = DnsControl.systemdResolved
    public var logDirectory: String?
    /// `nil`: reconnect for ever.
    public var maxPartitionTime: Duration?
    public var checkOnly = false
    public var exitWhenReady = false
    public var name: String
    public var id: String?
    public var activateInternetResource = false
    public var telemetry = true
    public var metrics: MetricsExporter?
    public var tokenPath = ClientConfiguration.defaultTokenPath
    public var raiseSocketBuffers = false
    /// The UDP socket buffers asked for, and what `rmem_max`/`wmem_max` are raised to.
    public var socketBuffers = SocketBufferSizes()
    public var logFilter = "info"
    public var portalApi = PortalApi.v2
    /// `WGKEYLOGFILE`: where to write the WireGuard key log; `nil` (the default) writes none.
    public var keyLogFile: String?
    /// The Unix socket the status is served on; `nil` serves none.
    public var statusSocket: String? = "/run/firezone-client/status.sock"

    /// The defaults, with the name.
    public init(name: String) {
        self.name = name
    }

    public static func resolve(_ arguments: ClientArguments, environment: [String: String], hostname: String) throws(OptionError)
        -> ClientConfiguration {
        let settings = Settings(environment: environment)
        var configuration = ClientConfiguration(name: settings.string(arguments.firezoneName, "FIREZONE_NAME") ?? hostname)
        if let url = settings.string(arguments.apiUrl, "FIREZONE_API_URL") { configuration.apiUrl = url }
        configuration.dnsControl = try settings.oneOf(arguments.dnsControl, "FIREZONE_DNS_CONTROL", name: "--dns-control",
                                                      default: .systemdResolved)
        configuration.logDirectory = settings.string(arguments.logDir, "LOG_DIR")
        if let text = settings.string(arguments.maxPartitionTime, "MAX_PARTITION_TIME") {
            guard let duration = HumanDuration.parse(text) else {
                throw .invalidValue(name: "--max-partition-time", value: text, expected: "a duration such as 5m, 1h or 30d")
            }
            configuration.maxPartitionTime = duration
        }
        configuration.checkOnly = arguments.check
        configuration.exitWhenReady = arguments.exit
        configuration.id = settings.string(arguments.firezoneId, "FIREZONE_ID").flatMap { $0.isEmpty ? nil : $0 }
        configuration.activateInternetResource = try settings.bool(arguments.activateInternetResource, "FIREZONE_ACTIVATE_INTERNET_RESOURCE")
        configuration.telemetry = try !settings.bool(arguments.noTelemetry, "FIREZONE_NO_TELEMETRY")
        if arguments.metrics != nil || environment["FIREZONE_METRICS"] != nil {
            configuration.metrics = try settings.oneOf(arguments.metrics, "FIREZONE_METRICS", name: "--metrics", default: MetricsExporter.stdout)
        }
        configuration.tokenPath = settings.string(arguments.tokenPath, "FIREZONE_TOKEN_PATH") ?? Self.defaultTokenPath
        configuration.raiseSocketBuffers = try settings.bool(arguments.incBuf, "FIREZONE_INC_BUF")
        configuration.logFilter = environment["RUST_LOG"] ?? "info"
        configuration.socketBuffers = try settings.socketBuffers()
        configuration.portalApi = try settings.oneOf(arguments.portalApi, "FIREZONE_PORTAL_API", name: "--portal-api", default: .v2)
        configuration.keyLogFile = environment["WGKEYLOGFILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let path = settings.string(arguments.statusSocket, "FIREZONE_STATUS_SOCKET") { configuration.statusSocket = path.isEmpty ? nil : path }
        return configuration
    }
}

/// The headless client's token: `FIREZONE_TOKEN` (taken out of the process environment at once), else the token
/// file, which must belong to root:root with no permissions beyond 0600, and is trimmed.
public enum ClientToken {
    /// Removes `FIREZONE_TOKEN` from the process environment and returns it. Call before any thread starts.
    public static func takeFromEnvironment() -> String? {
        guard let value = getenv("FIREZONE_TOKEN") else { return nil }
        let token = String(cString: value)
        unsetenv("FIREZONE_TOKEN")
        return token
    }

    public static func read(environmentToken: String?, path: String) throws(OptionError) -> String {
        if let environmentToken { return environmentToken }
        var status = stat()
        guard stat(path, &status) == 0 else { throw .clientTokenMissing(path: path) }
        guard status.st_uid == 0 else { throw .tokenFileRefused("Token file `\(path)` should be owned by root user") }
        guard status.st_gid == 0 else { throw .tokenFileRefused("Token file `\(path)` should be owned by root group") }
        guard status.st_mode & 0o177 == 0 else { throw .tokenFileRefused("Token file `\(path)` should have mode 0o400 or 0x600") }
        guard let data = FileManager.default.contents(atPath: path) else { throw .clientTokenMissing(path: path) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .tokenFileRefused("Token file `\(path)` is not UTF-8")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// humantime's durations as `MAX_PARTITION_TIME` takes them: numbers with units, e.g. `5m`, `1h 30m`, `30d`.
public enum HumanDuration {
    public static func parse(_ text: String) -> Duration? {
        let units: [String: Int64] = [
            "ns": 0, "us": 0, "ms": 0, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60,
            "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86_400,
            "day": 86_400, "days": 86_400, "w": 604_800, "week": 604_800, "weeks": 604_800,
        ]
        var total = Duration.zero
        var rest = Substring(text.filter { $0 != " " })
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            let unit = rest.dropFirst(digits.count).prefix { $0.isLetter }
            guard let number = Int64(digits), let seconds = units[String(unit)] else { return nil }
            switch unit {
            case "ns": total += .nanoseconds(number)
            case "us": total += .microseconds(number)
            case "ms": total += .milliseconds(number)
            default: total += .seconds(number * seconds)
            }
            rest = rest.dropFirst(digits.count + unit.count)
        }
        return total
    }
}
