import AppOptions
import ArgumentParser
import SansIO
import Testing

@Suite("firezone-relay: flags, environment variables and defaults (spec snownet.md §3.12)")
struct RelayOptionsTests {
    func resolve(_ arguments: [String], _ environment: [String: String] = [:]) throws -> RelayOptions {
        try RelayOptions.resolve(try RelayArguments.parse(arguments), environment: environment)
    }

    @Test("defaults: port 3478, allocations on 49152-65535, Firezone's credentials, health check on 0.0.0.0:8080")
    func defaults() throws {
        let options = try resolve(["--public-ip4-addr", "192.0.2.1", "--secret", "s"])
        #expect(options == RelayOptions(publicIPv4: IPv4Address(192, 0, 2, 1), secret: "s"))
        #expect(options.listenPort == 3478 && options.ports == 49152...65535 && options.credentials == .firezone)
        #expect(options.healthCheckAddress == SocketAddress("0.0.0.0:8080")! && options.logFilter == "info")
    }

    @Test("variables fill absent flags; a flag wins")
    func variables() throws {
        let environment = ["PUBLIC_IP4_ADDR": "192.0.2.1", "PUBLIC_IP6_ADDR": "2001:db8::1", "FIREZONE_RELAY_SECRET": "env-secret",
                           "LISTEN_PORT": "3479", "LOWEST_PORT": "50000", "HIGHEST_PORT": "50010", "BIND_IP4_ADDR": "10.0.0.1",
                           "FIREZONE_RELAY_CREDENTIALS": "coturn-rest-api", "HEALTH_CHECK_ADDR": "127.0.0.1:9000", "RUST_LOG": "debug"]
        let options = try resolve([], environment)
        #expect(options.publicIPv6 == IPv6Address("2001:db8::1") && options.secret == "env-secret" && options.listenPort == 3479)
        #expect(options.ports == 50000...50010 && options.bindIPv4 == IPv4Address(10, 0, 0, 1) && options.credentials == .coturnRestApi)
        #expect(options.healthCheckAddress == SocketAddress("127.0.0.1:9000")! && options.logFilter == "debug")
        #expect(try resolve(["--secret", "flag", "--listen-port", "3480"], environment).secret == "flag")
    }

    @Test("refusals: no public address, no secret, bad addresses and ports, a range holding the listening port")
    func refusals() throws {
        #expect(throws: OptionError.missing("--public-ip4-addr or --public-ip6-addr (PUBLIC_IP4_ADDR, PUBLIC_IP6_ADDR)")) {
            try resolve(["--secret", "s"])
        }
        #expect(throws: OptionError.self) { try resolve(["--public-ip4-addr", "192.0.2.1"]) }
        #expect(throws: OptionError.invalidValue(name: "--public-ip4-addr", value: "2001:db8::1", expected: "an IPv4 address")) {
            try resolve(["--public-ip4-addr", "2001:db8::1", "--secret", "s"])
        }
        #expect(throws: OptionError.invalidValue(name: "--listen-port", value: "0", expected: "a port from 1 to 65535")) {
            try resolve(["--public-ip4-addr", "192.0.2.1", "--secret", "s", "--listen-port", "0"])
        }
        #expect(throws: OptionError.self) {
            try resolve(["--public-ip4-addr", "192.0.2.1", "--secret", "s", "--lowest-port", "3000", "--highest-port", "4000"])
        }
        #expect(throws: OptionError.self) { try resolve(["--public-ip4-addr", "192.0.2.1", "--secret", "s", "--credentials", "plain"]) }
    }

    @Test("TURN over TCP on the TURN port unless told (0: off); over TLS on 443 with both a certificate and a key")
    func streams() throws {
        let base = ["--public-ip4-addr", "192.0.2.1", "--secret", "s"]
        let defaults = try resolve(base)
        #expect(defaults.tcpListenPort == 3478 && defaults.tls == nil)
        #expect(try resolve(base + ["--listen-port", "3479"]).tcpListenPort == 3479, "follows the TURN port")
        #expect(try resolve(base, ["TCP_LISTEN_PORT": "0"]).tcpListenPort == nil)
        let tls = try resolve(base, ["TLS_CERTIFICATE": "/etc/c.pem", "TLS_PRIVATE_KEY": "/etc/k.pem"])
        #expect(tls.tls == RelayTls(port: 443, certificateFile: "/etc/c.pem", privateKeyFile: "/etc/k.pem"))
        #expect(try resolve(base + ["--tls-certificate", "c", "--tls-private-key", "k", "--tls-listen-port", "5349"]).tls?.port == 5349)
        let needsBoth = OptionError.missing("--tls-certificate and --tls-private-key (TLS_CERTIFICATE, TLS_PRIVATE_KEY): TURN over TLS needs both")
        #expect(throws: needsBoth) { try resolve(base + ["--tls-certificate", "c"]) }
        #expect(throws: needsBoth) { try resolve(base + ["--tls-listen-port", "443"]) }
        #expect(throws: OptionError.self) { try resolve(base + ["--tls-certificate", "c", "--tls-private-key", "k", "--tls-listen-port", "3478"]) }
    }

    @Test("a portal token: the relay joins it (FIREZONE_API_URL, FIREZONE_NAME or the hostname) with a random secret unless one is fixed")
    func portal() throws {
        let first = try RelayOptions.resolve(try RelayArguments.parse(["--public-ip4-addr", "192.0.2.1", "relay-token"]), environment: [:],
                                             hostname: "relay-host")
        #expect(first.portal == RelayPortal(token: "relay-token", name: "relay-host"))
        #expect(first.portal?.apiUrl == "wss://api.firezone.dev")
        let second = try resolve(["--public-ip4-addr", "192.0.2.1"], ["FIREZONE_TOKEN": "t", "FIREZONE_API_URL": "ws://portal:8081",
                                                                      "FIREZONE_NAME": "relay-7"])
        #expect(second.portal?.apiUrl == "ws://portal:8081" && second.portal?.name == "relay-7")
        #expect(first.secret.count == 64 && first.secret.allSatisfy(\.isHexDigit) && first.secret != second.secret,
                "32 random bytes as hex, drawn at each start")
        #expect(try resolve(["--public-ip4-addr", "192.0.2.1", "--secret", "fixed", "t"]).secret == "fixed")
        #expect(throws: OptionError.self, "the portal mints Firezone's credentials only") {
            try resolve(["--public-ip4-addr", "192.0.2.1", "--credentials", "coturn-rest-api", "t"])
        }
    }
}
