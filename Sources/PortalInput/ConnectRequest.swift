import PortalMessages

/// The checks the real portal makes on a WebSocket upgrade (spec §1.1, §1.2, §8): a known token from the
/// `X-Authorization` header or, failing that, the `token` query parameter (401 `missing_token` or
/// `invalid_token`), then the device fields and a User-Agent carrying a component version (400
/// `invalid_connect_params`), each refusal answered with RFC 9457 problem details.
public struct ConnectRequest: Sendable {
    public enum Role: String, Sendable {
        case client, gateway

        var components: [String] {
            switch self {
            case .client: ["connlib", "headless-client", "gui-client", "apple-client", "android-client"]
            case .gateway: ["gateway", "connlib"]
            }
        }
    }

    /// `os_name "/" os_version " " component "/" version ...` (the portal's `version.ex` and `views/client.ex`).
    public struct UserAgentParts: Sendable, Equatable {
        public var osName: String?
        public var osVersion: String?
        public var component: String
        public var version: String
    }

    /// Why the upgrade is refused: the HTTP status, the problem's machine-readable code and its detail.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public var status: Int
        public var code: String
        public var detail: String

        public init(status: Int, code: String, detail: String) {
            self.status = status
            self.code = code
            self.detail = detail
        }

        public var description: String { "\(status) \(code): \(detail)" }

        /// The `application/problem+json` body, as the portal's `ProblemDetails.send_with_code` writes it.
        public var problemJson: String {
            let quoted = JsonText.string
            return #"{"type":"about:blank","title":"# + quoted(Self.title(status)) + #","status":\#(status),"detail":"#
                + quoted(detail) + #","code":"# + quoted(code) + "}"
        }

        static func title(_ status: Int) -> String {
            switch status {
            case 400: "Bad Request"
            case 401: "Unauthorized"
            case 403: "Forbidden"
            case 404: "Not Found"
            case 409: "Conflict"
            case 503: "Service Unavailable"
            default: "Internal Server Error"
            }
        }
    }

    public var role: Role
    public var token: String
    public var externalId: String
    public var name: String
    public var publicKey: PublicKey
    public var userAgent: UserAgentParts

    /// - Parameters:
    ///   - query: the decoded query parameters.
    ///   - authorization: the `X-Authorization` header, if any (`Bearer <token>`, Firezone's later form).
    public init(role: Role, query: [String: String], authorization: String?, userAgent: String?,
                tokenIsKnown: (String) -> Bool) throws(Refusal) {
        self.role = role
        token = try Self.token(query: query, authorization: authorization, isKnown: tokenIsKnown)
        guard let externalId = query["external_id"], !externalId.isEmpty else {
            throw Self.invalid("external_id can't be blank")
        }
        self.externalId = externalId
        name = query["name"] ?? externalId
        guard let keyText = query["public_key"], let key = WireGuardKey(base64: keyText) else {
            throw Self.invalid("public_key is invalid")
        }
        publicKey = key
        guard let parts = Self.parse(userAgent: userAgent ?? "", components: role.components) else {
            throw Self.invalid("last_seen_user_agent is invalid")
        }
        self.userAgent = parts
    }

    /// The token from `X-Authorization: Bearer` or, failing that, the `token` query parameter; 401 when it is
    /// missing or unknown (`PortalAPI.Sockets.extract_token`).
    static func token(query: [String: String], authorization: String?, isKnown: (String) -> Bool) throws(Refusal) -> String {
        let headerToken = authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)).trimmed : nil }
        guard let token = headerToken ?? query["token"], !token.isEmpty else {
            throw Refusal(status: 401, code: "missing_token", detail: "Missing token")
        }
        guard isKnown(token) else { throw Refusal(status: 401, code: "invalid_token", detail: "Invalid token") }
        return token
    }

    /// The portal's answer to a changeset error: `<field> <messages>`.
    static func invalid(_ detail: String) -> Refusal {
        Refusal(status: 400, code: "invalid_connect_params", detail: detail)
    }

    static func parse(userAgent: String, components: [String]) -> UserAgentParts? {
        let tokens = userAgent.split(separator: " ")
        guard let index = tokens.firstIndex(where: { token in components.contains { token.hasPrefix($0 + "/") } }) else {
            return nil
        }
        let component = tokens[index].split(separator: "/", maxSplits: 1)
        guard component.count == 2, component[1].first?.isNumber == true else { return nil }
        // The OS part is everything before the component token: "Mac OS/15.1.1" or "Ubuntu/22.4.0".
        let os = tokens[..<index].joined(separator: " ")
        let osParts = os.split(separator: "/", maxSplits: 1)
        return UserAgentParts(osName: osParts.first.map(String.init), osVersion: osParts.count == 2 ? String(osParts[1]) : nil,
                              component: String(component[0]), version: String(component[1]))
    }
}

extension String {
    var trimmed: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
