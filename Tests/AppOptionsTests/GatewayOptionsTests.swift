import AppOptions
import AppRuntime
import PhoenixChannel
import SansIO
import Testing

@Suite("firezone-gateway: flags, environment variables and the token (spec portal-phoenix.md §7.1)")
struct GatewayOptionsTests {
    func resolve(_ arguments: [String], _ environment: [String: String], files: [String: String] = [:]) throws -> GatewayConfiguration {
        try GatewayConfiguration.resolve(GatewayArguments.parse(arguments), environment: environment, hostname: "gw-host",
                                         readFile: { files[$0] })
    }

    @Test("defaults, with the token as the argument")
    func defaults() throws {
        let configuration = try resolve(["secret"], [:])
        #expect(configuration == GatewayConfiguration(token: "secret", name: "gw-host"))
        #expect(configuration.apiUrl == "wss://api.firezone.dev" && configuration.healthCheckAddress == SocketAddress("0.0.0.0:8080")!)
        #expect(configuration.logFormat == .human && configuration.logFilter == "info" && configuration.raiseSocketBuffers)
    }

    @Test("a flag wins over its variable; a variable fills an absent flag")
    func flagsAndVariables() throws {
        let environment = [
            "FIREZONE_TOKEN": "from-env", "FIREZONE_API_URL": "ws://portal.test:8081", "FIREZONE_NAME": "env-name",
            "FIREZONE_ID": "env-id", "FIREZONE_LOG_FORMAT": "json", "FIREZONE_NO_TELEMETRY": "true", "FIREZONE_NO_INC_BUF": "false",
            "HEALTH_CHECK_ADDR": "127.0.0.1:9090", "FIREZONE_METRICS": "otel-collector", "RUST_LOG": "debug,snownet=trace",
        ]
        let fromEnvironment = try resolve([], environment)
        #expect(fromEnvironment.token == "from-env" && fromEnvironment.apiUrl == "ws://portal.test:8081")
        #expect(fromEnvironment.name == "env-name" && fromEnvironment.id == "env-id" && fromEnvironment.logFormat == .json)
        #expect(!fromEnvironment.telemetry && fromEnvironment.raiseSocketBuffers && fromEnvironment.metrics == .otelCollector)
        #expect(fromEnvironment.healthCheckAddress == SocketAddress("127.0.0.1:9090")! && fromEnvironment.logFilter == "debug,snownet=trace")
        let fromFlags = try resolve(["arg-token", "-n", "flag-name", "--firezone-id", "", "--log-format", "human", "--no-inc-buf",
                                     "--no-check", "--health-check-addr", "[::1]:8181"], environment)
        #expect(fromFlags.token == "arg-token" && fromFlags.name == "flag-name" && fromFlags.logFormat == .human)
        #expect(fromFlags.id == nil, "an empty ID means derive it")
        #expect(!fromFlags.raiseSocketBuffers && !fromFlags.checkPrivileges && fromFlags.healthCheckAddress == SocketAddress("[::1]:8181")!)
    }

    @Test("the systemd credential is trimmed and used last; without any token the spec's message")
    func tokenSources() throws {
        let files = ["/run/credentials/fz/FIREZONE_TOKEN": "  credential-token\n"]
        #expect(try resolve([], ["CREDENTIALS_DIRECTORY": "/run/credentials/fz"], files: files).token == "credential-token")
        #expect(try resolve([], ["CREDENTIALS_DIRECTORY": "/run/credentials/fz", "FIREZONE_TOKEN": "env"], files: files).token == "env")
        #expect(throws: OptionError.gatewayTokenMissing) { try resolve([], [:]) }
        #expect("\(OptionError.gatewayTokenMissing)" == "Failed to read `FIREZONE_TOKEN` systemd credential")
    }

    @Test("values outside what is allowed are refused with what was expected")
    func refusals() throws {
        #expect(throws: OptionError.notABoolean(variable: "FIREZONE_NO_TELEMETRY", value: "yes")) {
            try resolve(["t"], ["FIREZONE_NO_TELEMETRY": "yes"])
        }
        #expect(throws: OptionError.invalidValue(name: "--log-format", value: "xml", expected: "human, json")) {
            try resolve(["t", "--log-format", "xml"], [:])
        }
        #expect(throws: OptionError.invalidValue(name: "--health-check-addr", value: "nowhere", expected: "an address:port")) {
            try resolve(["t"], ["HEALTH_CHECK_ADDR": "nowhere"])
        }
    }

    @Test("the partition time (24 h by default, #11664) and the portal API (v2 by default) from flags or variables")
    func partitionTimeAndPortalApi() throws {
        let defaults = try resolve(["t"], [:])
        #expect(defaults.maxPartitionTime == .seconds(86_400) && defaults.portalApi == .v2)
        let fromEnvironment = try resolve(["t"], ["FIREZONE_MAX_PARTITION_TIME": "30m", "FIREZONE_PORTAL_API": "v1"])
        #expect(fromEnvironment.maxPartitionTime == .seconds(1800) && fromEnvironment.portalApi == .v1)
        let fromFlags = try resolve(["t", "-m", "2h", "--portal-api", "v2"], ["FIREZONE_MAX_PARTITION_TIME": "30m", "FIREZONE_PORTAL_API": "v1"])
        #expect(fromFlags.maxPartitionTime == .seconds(7200) && fromFlags.portalApi == .v2)
        #expect(throws: OptionError.invalidValue(name: "--max-partition-time", value: "forever", expected: "a duration such as 5m, 1h or 30d")) {
            try resolve(["t"], ["FIREZONE_MAX_PARTITION_TIME": "forever"])
        }
        #expect(throws: OptionError.invalidValue(name: "--portal-api", value: "v3", expected: "v1, v2")) {
            try resolve(["t", "--portal-api", "v3"], [:])
        }
    }

    @Test("UDP socket buffers: Firezone's 16 MiB / 128 MiB, or FIREZONE_UDP_SEND_BUFFER_SIZE and FIREZONE_UDP_RECV_BUFFER_SIZE (#10234)")
    func socketBuffers() throws {
        #expect(try resolve(["t"], [:]).socketBuffers == SocketBufferSizes(send: 16_777_216, receive: 134_217_728))
        let sized = try resolve(["t"], ["FIREZONE_UDP_SEND_BUFFER_SIZE": "1048576", "FIREZONE_UDP_RECV_BUFFER_SIZE": "4194304"])
        #expect(sized.socketBuffers == SocketBufferSizes(send: 1_048_576, receive: 4_194_304))
        for bad in ["0", "-5", "16M", ""] {
            #expect(throws: OptionError.invalidValue(name: "FIREZONE_UDP_RECV_BUFFER_SIZE", value: bad, expected: "a positive number of bytes")) {
                try resolve(["t"], ["FIREZONE_UDP_RECV_BUFFER_SIZE": bad])
            }
        }
    }
}
