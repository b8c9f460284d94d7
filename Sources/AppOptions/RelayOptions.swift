import AppRuntime
import ArgumentParser
import SansIO

/// `firezone-relay`'s command line, after Firezone's relay (spec `snownet.md` §3.12); each flag falls back to its
/// variable.
public struct RelayArguments: ParsableArguments {
    @Argument(help: "The portal token (or FIREZONE_TOKEN); without one the relay runs alone and needs --secret.")
    public var token: String?
    @Option(help: "The portal's URL (FIREZONE_API_URL; default wss://api.firezone.dev).")
    public var apiUrl: String?
    @Option(name: .customLong("firezone-name"), help: "Name shown in the portal (FIREZONE_NAME; default: hostname).")
    public var firezoneName: String?
    @Option(name: .customLong("public-ip4-addr"), help: "The IPv4 address clients and peers reach (PUBLIC_IP4_ADDR).")
    public var publicIp4Addr: String?
    @Option(name: .customLong("public-ip6-addr"), help: "The IPv6 address clients and peers reach (PUBLIC_IP6_ADDR).")
    public var publicIp6Addr: String?
    @Option(name: .customLong("bind-ip4-addr"), help: "Where to bind IPv4 sockets (BIND_IP4_ADDR; default 0.0.0.0).")
    public var bindIp4Addr: String?
    @Option(name: .customLong("bind-ip6-addr"), help: "Where to bind IPv6 sockets (BIND_IP6_ADDR; default ::).")
    public var bindIp6Addr: String?
    @Option(help: "The TURN port (LISTEN_PORT; default 3478).")
    public var listenPort: String?
    @Option(help: "TURN over TCP for networks that block UDP (TCP_LISTEN_PORT; default: the TURN port; 0 turns it off).")
    public var tcpListenPort: String?
    @Option(help: "TURN over TLS, with --tls-certificate and --tls-private-key (TLS_LISTEN_PORT; default 443).")
    public var tlsListenPort: String?
    @Option(help: "The PEM certificate chain TURN over TLS presents (TLS_CERTIFICATE).")
    public var tlsCertificate: String?
    @Option(help: "The PEM private key of that certificate (TLS_PRIVATE_KEY).")
    public var tlsPrivateKey: String?
    @Option(help: "The lowest port of allocations (LOWEST_PORT; default 49152).")
    public var lowestPort: String?
    @Option(help: "The highest port of allocations (HIGHEST_PORT; default 65535).")
    public var highestPort: String?
    @Option(help: "The secret credentials are derived from (FIREZONE_RELAY_SECRET; with a portal, a random one by default).")
    public var secret: String?
    @Option(help: "firezone (username <expiry>:<salt>, SHA-256) or coturn-rest-api (HMAC-SHA1) (FIREZONE_RELAY_CREDENTIALS).")
    public var credentials: String?
    @Option(help: "human or json (FIREZONE_LOG_FORMAT).")
    public var logFormat: String?
    @Option(help: "Where /healthz, /readyz and /metrics are served (HEALTH_CHECK_ADDR; default 0.0.0.0:8080).")
    public var healthCheckAddr: String?

    public init() {}
}

/// How the relay derives passwords (`--credentials`).
public enum RelayCredentialScheme: String, Sendable, CaseIterable {
    case firezone
    case coturnRestApi = "coturn-rest-api"
}

/// The portal a relay joins: it announces its addresses and its secret there, and the portal mints credentials.
public struct RelayPortal: Equatable, Sendable {
    public var apiUrl = "wss://api.firezone.dev"
    public var token: String
    public var name: String

    public init(token: String, name: String) {
        self.token = token
        self.name = name
    }
}

/// Everything the relay runs with, after flags, variables and the defaults.
public struct RelayOptions: Equatable, Sendable {
    public var publicIPv4: IPv4Address?
    public var publicIPv6: IPv6Address?
    public var bindIPv4 = IPv4Address(0, 0, 0, 0)
    public var bindIPv6 = IPv6Address.unspecified
    public var listenPort: UInt16 = 3478
    /// TURN over TCP (RFC 8656 §3); `nil`: none.
    public var tcpListenPort: UInt16? = 3478
    /// TURN over TLS: the port and the certificate and key files; `nil`: none.
    public var tls: RelayTls?
    public var ports: ClosedRange<UInt16> = 49152...65535
    /// Fixed (`--secret`), or drawn at start when the relay joins a portal (32 random bytes as hex, as Firezone's).
    public var secret: String
    /// `nil`: no portal; clients come with credentials derived from the fixed secret by someone else.
    public var portal: RelayPortal?
    public var credentials = RelayCredentialScheme.firezone
    public var logFormat = LogFormat.human
    /// `RUST_LOG`, default `info`.
    public var logFilter = "info"
    public var healthCheckAddress = SocketAddress("0.0.0.0:8080")!

    public init(publicIPv4: IPv4Address?, publicIPv6: IPv6Address? = nil, secret: String) {
        self.publicIPv4 = publicIPv4
        self.publicIPv6 = publicIPv6
        self.secret = secret
    }

    /// - Parameter hostname: the name shown in the portal when nothing else names the relay.
    public static func resolve(_ arguments: RelayArguments, environment: [String: String], hostname: String = "relay") throws(OptionError)
        -> RelayOptions
    {
        let settings = Settings(environment: environment)
        let publicIPv4 = try settings.string(arguments.publicIp4Addr, "PUBLIC_IP4_ADDR").map { text throws(OptionError) in
            guard let address = IPv4Address(text) else { throw .invalidValue(name: "--public-ip4-addr", value: text, expected: "an IPv4 address") }
            return address
        }
        let publicIPv6 = try settings.string(arguments.publicIp6Addr, "PUBLIC_IP6_ADDR").map { text throws(OptionError) in
            guard let address = IPv6Address(text) else { throw .invalidValue(name: "--public-ip6-addr", value: text, expected: "an IPv6 address") }
            return address
        }
        guard publicIPv4 != nil || publicIPv6 != nil else { throw .missing("--public-ip4-addr or --public-ip6-addr (PUBLIC_IP4_ADDR, PUBLIC_IP6_ADDR)") }
        let portal = (arguments.token ?? environment["FIREZONE_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }.map { token in
            var portal = RelayPortal(token: token, name: settings.string(arguments.firezoneName, "FIREZONE_NAME") ?? hostname)
            if let url = settings.string(arguments.apiUrl, "FIREZONE_API_URL") { portal.apiUrl = url }
            return portal
        }
        let fixedSecret = settings.string(arguments.secret, "FIREZONE_RELAY_SECRET").flatMap { $0.isEmpty ? nil : $0 }
        guard let secret = fixedSecret ?? portal.map({ _ in randomSecret() }) else {
            throw .missing("a portal token (FIREZONE_TOKEN) or --secret (FIREZONE_RELAY_SECRET): without a portal the relay needs a fixed secret to check credentials")
        }
        var options = RelayOptions(publicIPv4: publicIPv4, publicIPv6: publicIPv6, secret: secret)
        options.portal = portal
        if let text = settings.string(arguments.bindIp4Addr, "BIND_IP4_ADDR") {
            guard let address = IPv4Address(text) else { throw .invalidValue(name: "--bind-ip4-addr", value: text, expected: "an IPv4 address") }
            options.bindIPv4 = address
        }
        if let text = settings.string(arguments.bindIp6Addr, "BIND_IP6_ADDR") {
            guard let address = IPv6Address(text) else { throw .invalidValue(name: "--bind-ip6-addr", value: text, expected: "an IPv6 address") }
            options.bindIPv6 = address
        }
        options.listenPort = try settings.port(arguments.listenPort, "LISTEN_PORT", name: "--listen-port", default: 3478)
        if settings.string(arguments.tcpListenPort, "TCP_LISTEN_PORT") == "0" {
            options.tcpListenPort = nil
        } else {
            options.tcpListenPort = try settings.port(arguments.tcpListenPort, "TCP_LISTEN_PORT", name: "--tcp-listen-port", default: options.listenPort)
        }
        let lowest = try settings.port(arguments.lowestPort, "LOWEST_PORT", name: "--lowest-port", default: 49152)
        let highest = try settings.port(arguments.highestPort, "HIGHEST_PORT", name: "--highest-port", default: 65535)
        guard lowest <= highest, !(lowest...highest).contains(options.listenPort) else {
            throw .invalidValue(name: "--lowest-port", value: "\(lowest)...\(highest)",
                                expected: "a range of ports not holding the listening port \(options.listenPort)")
        }
        options.ports = lowest...highest
        let certificate = settings.string(arguments.tlsCertificate, "TLS_CERTIFICATE")
        let privateKey = settings.string(arguments.tlsPrivateKey, "TLS_PRIVATE_KEY")
        switch (certificate, privateKey) {
        case let (certificate?, privateKey?):
            let port = try settings.port(arguments.tlsListenPort, "TLS_LISTEN_PORT", name: "--tls-listen-port", default: 443)
            guard port != options.tcpListenPort else {
                throw .invalidValue(name: "--tls-listen-port", value: "\(port)", expected: "a port other than TURN over TCP's \(port)")
            }
            options.tls = RelayTls(port: port, certificateFile: certificate, privateKeyFile: privateKey)
        case (nil, nil):
            guard settings.string(arguments.tlsListenPort, "TLS_LISTEN_PORT") == nil else {
                throw .missing("--tls-certificate and --tls-private-key (TLS_CERTIFICATE, TLS_PRIVATE_KEY): TURN over TLS needs both")
            }
        default:
            throw .missing("--tls-certificate and --tls-private-key (TLS_CERTIFICATE, TLS_PRIVATE_KEY): TURN over TLS needs both")
        }
        options.credentials = try settings.oneOf(arguments.credentials, "FIREZONE_RELAY_CREDENTIALS", name: "--credentials", default: .firezone)
        guard portal == nil || options.credentials == .firezone else {
            throw .invalidValue(name: "--credentials", value: options.credentials.rawValue,
                                expected: "firezone when the relay joins a portal (the portal derives Firezone's credentials)")
        }
        options.logFormat = try settings.oneOf(arguments.logFormat, "FIREZONE_LOG_FORMAT", name: "--log-format", default: .human)
        options.logFilter = environment["RUST_LOG"] ?? "info"
        if let text = settings.string(arguments.healthCheckAddr, "HEALTH_CHECK_ADDR") {
            guard let address = SocketAddress(text) else {
                throw .invalidValue(name: "--health-check-addr", value: text, expected: "an address:port")
            }
            options.healthCheckAddress = address
        }
        return options
    }
}

/// TURN over TLS on the relay: where, and with which certificate.
public struct RelayTls: Equatable, Sendable {
    public var port: UInt16
    public var certificateFile: String
    public var privateKeyFile: String

    public init(port: UInt16, certificateFile: String, privateKeyFile: String) {
        self.port = port
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
    }
}

/// 32 random bytes as lowercase hex: the secret a relay that joins a portal draws at start.
func randomSecret() -> String {
    var generator = SystemRandomNumberGenerator()
    return DeviceId.hex((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
}
