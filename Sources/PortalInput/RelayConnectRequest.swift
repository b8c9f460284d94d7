import SansIO

/// A relay's WebSocket upgrade to `/relay/websocket` (Firezone's `PortalAPI.Relay.Socket`): a known relay token
/// (401 otherwise), the public addresses clients reach it at, and its listening port (3478 when absent).
///
/// Deliberate deviation: the real portal answers a relay without any address with 500 `unhandled_connect_error`
/// (its `:missing_ip` falls through `handle_error`); this one says what is wrong with 400 `invalid_connect_params`,
/// which the relay takes as fatal, as it should take a configuration it cannot fix by retrying.
public struct RelayConnectRequest: Sendable, Equatable {
    public var token: String
    /// The name the relay gives, if any.
    public var name: String?
    public var ipv4: IPv4Address?
    public var ipv6: IPv6Address?
    public var port: UInt16
    /// The `relay/<version>` of the User-Agent, if it has one (the portal does not require it of relays).
    public var version: String?

    public init(query: [String: String], authorization: String?, userAgent: String?,
                tokenIsKnown: (String) -> Bool) throws(ConnectRequest.Refusal) {
        token = try ConnectRequest.token(query: query, authorization: authorization, isKnown: tokenIsKnown)
        name = query["name"]
        ipv4 = try Self.parse(query["ipv4"], "ipv4") { IPv4Address($0) }
        ipv6 = try Self.parse(query["ipv6"], "ipv6") { IPv6Address($0) }
        guard ipv4 != nil || ipv6 != nil else { throw ConnectRequest.invalid("ipv4 or ipv6 is required") }
        if let text = query["port"] {
            guard let port = UInt16(text), port != 0 else { throw ConnectRequest.invalid("port is invalid") }
            self.port = port
        } else {
            port = 3478
        }
        version = userAgent.flatMap { ConnectRequest.parse(userAgent: $0, components: ["relay"]) }?.version
    }

    /// Where clients and gateways send TURN requests: one address per family the relay has.
    public var addresses: [SocketAddress] {
        [ipv4.map { SocketAddress(ip: .v4($0), port: port) }, ipv6.map { SocketAddress(ip: .v6($0), port: port) }].compactMap { $0 }
    }

    private static func parse<Address>(_ text: String?, _ field: String, _ make: (String) -> Address?) throws(ConnectRequest.Refusal) -> Address? {
        guard let text else { return nil }
        guard let address = make(text) else { throw ConnectRequest.invalid("\(field) is invalid") }
        return address
    }
}
