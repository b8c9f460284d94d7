import Crypto
import FoundationEssentials

/// The portal URL a component connects to (spec `portal-phoenix.md` §1.1, §8). The token travels only in the
/// ``authorization`` header value, never in the URL; ``description`` and ``baseUrl`` show `scheme://host:port/`
/// and nothing else.
public struct LoginUrl: Sendable, CustomStringConvertible, CustomReflectable {
    public enum Mode: String, Sendable {
        case client, gateway, relay
    }

    /// `ws` or `wss`.
    public let scheme: String
    public let host: String
    /// The port to dial: the URL's, or 443 when it has none or names its scheme's default (the `url` crate's quirk).
    public let port: Int
    /// `/<api path>/<mode>/v2/websocket` for clients and gateways on ``PortalApi/v2``, `/<api path>/<mode>/websocket`
    /// otherwise (the relay has no v2 path).
    public let path: String
    /// Which generation of the portal's messages the path selects.
    public let api: PortalApi
    /// Query parameters in Firezone's order, without `public_key` (added per connection).
    let parameters: [(String, String)]
    private let token: String

    /// What a relay announces in its query (`LoginUrl::relay`): where clients reach it.
    public struct RelayAddresses: Sendable, Hashable {
        public var ipv4: String?
        public var ipv6: String?
        public var listenPort: UInt16

        public init(ipv4: String?, ipv6: String?, listenPort: UInt16) {
            self.ipv4 = ipv4
            self.ipv6 = ipv6
            self.listenPort = listenPort
        }
    }

    /// Device details that go into the query.
    public struct Device: Sendable, Hashable {
        public var id: String
        public var name: String
        public var serial: String?
        public var uuid: String?

        public init(id: String, name: String, serial: String? = nil, uuid: String? = nil) {
            self.id = id
            self.name = name
            self.serial = serial
            self.uuid = uuid
        }
    }

    /// - Parameters:
    ///   - token: surrounding whitespace is dropped (a token file's trailing newline, #12992).
    ///   - relay: a relay's addresses, after its name in the query (`ipv4`, `ipv6`, `port`); `mode` `.relay` only.
    public init(apiUrl: String, mode: Mode, token: String, device: Device, api: PortalApi = .v2,
                relay: RelayAddresses? = nil) throws(LoginUrlError) {
        guard let components = URLComponents(string: apiUrl), let original = components.scheme?.lowercased() else {
            throw .unparsable
        }
        switch original {
        case "http", "ws": scheme = "ws"
        case "https", "wss": scheme = "wss"
        default: throw .invalidScheme(original)
        }
        guard let host = components.host, !host.isEmpty else { throw .missingHost }
        self.host = host
        let defaultPort = original == "http" || original == "ws" ? 80 : 443
        port = components.port.flatMap { $0 == defaultPort ? nil : $0 } ?? 443
        let segments = components.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let kept = segments.last == "" ? Array(segments.dropLast()) : Array(segments)
        self.api = mode == .relay ? .v1 : api
        let version = self.api == .v2 ? ["v2"] : []
        path = "/" + (kept.map(String.init) + [mode.rawValue] + version + ["websocket"]).joined(separator: "/")
        self.token = token.trimmingWhitespace
        var parameters: [(String, String)] = []
        if mode != .relay {
            parameters.append(("external_id", Self.externalId(deviceId: device.id)))
        }
        parameters.append(("name", device.name))
        if mode == .relay, let relay {
            if let ipv4 = relay.ipv4 { parameters.append(("ipv4", ipv4)) }
            if let ipv6 = relay.ipv6 { parameters.append(("ipv6", ipv6)) }
            parameters.append(("port", String(relay.listenPort)))
        }
        if mode == .client {
            if let serial = device.serial { parameters.append(("device_serial", serial)) }
            if let uuid = device.uuid { parameters.append(("device_uuid", uuid)) }
        }
        self.parameters = parameters
    }

    /// `scheme://host:port/`: safe to log.
    public var baseUrl: String { "\(scheme)://\(host):\(port)/" }

    public var description: String { baseUrl }

    /// `dump` and debuggers see the base URL only, never the token.
    public var customMirror: Mirror { Mirror(self, children: ["baseUrl": baseUrl]) }

    /// The `X-Authorization` header value, `Bearer <token>`: never log it.
    public var authorization: String { "Bearer " + token }

    /// The path and query for the upgrade request, `public_key` (standard base64) last; a relay has none.
    public func requestTarget(publicKey: String?) -> String {
        let query = (parameters + (publicKey.map { [("public_key", $0)] } ?? [])).map { "\(Self.formEncode($0))=\(Self.formEncode($1))" }
        return path + "?" + query.joined(separator: "&")
    }

    /// A device ID that is a UUID (any of its spellings) is sent as the lowercase hex SHA-256 of its exact
    /// bytes; anything else verbatim.
    public static func externalId(deviceId: String) -> String {
        guard isUuid(deviceId) else { return deviceId }
        return SHA256.hash(data: Array(deviceId.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }

    /// application/x-www-form-urlencoded, as the WHATWG URL standard: `*-._` and alphanumerics stay, space is
    /// `+`, every other byte is `%XX`.
    static func formEncode(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "*"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "):
                encoded += "+"
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return encoded
    }

    /// Hyphenated, simple (32 hex digits), braced, or `urn:uuid:` form, any case (the `uuid` crate's parser).
    static func isUuid(_ text: String) -> Bool {
        var body = Substring(text)
        if body.lowercased().hasPrefix("urn:uuid:") {
            body = body.dropFirst(9)
        } else if body.hasPrefix("{") && body.hasSuffix("}") {
            body = body.dropFirst().dropLast()
        }
        let hexDigits = body.filter { $0 != "-" }
        guard hexDigits.count == 32, hexDigits.allSatisfy(\.isHexDigit), hexDigits.allSatisfy(\.isASCII) else { return false }
        if body.count == 32 { return true }
        let groups = body.split(separator: "-", omittingEmptySubsequences: false).map(\.count)
        return groups == [8, 4, 4, 4, 12]
    }
}

extension String {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

/// Why a portal URL was refused.
public enum LoginUrlError: Error, Hashable, Sendable, CustomStringConvertible {
    case unparsable
    case invalidScheme(String)
    case missingHost

    public var description: String {
        switch self {
        case .unparsable: "the portal URL does not parse"
        case .invalidScheme(let scheme): "invalid scheme '\(scheme)'; only http(s) and ws(s) are allowed"
        case .missingHost: "the portal URL has no host"
        }
    }
}
