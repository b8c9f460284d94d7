import SansIO

/// A relay as the portal lists it (spec §2.1), internally tagged on `type`. An unknown type fails the whole
/// message, as in Firezone.
public enum Relay: Hashable, Sendable, Codable {
    case turn(TurnRelay)
    /// A STUN-only server; Firezone parses and then ignores these.
    case stun(id: RelayId, address: SocketAddress)

    public var id: RelayId {
        switch self {
        case .turn(let relay): relay.id
        case .stun(let id, _): id
        }
    }

    private enum CodingKeys: String, CodingKey {
        case type, id, addr, username, password, expiresAt = "expires_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        let id = try container.decode(RelayId.self, forKey: .id)
        let address = try container.decode(SocketAddress.self, forKey: .addr)
        switch type {
        case "turn":
            self = .turn(TurnRelay(id: id, address: address,
                                   username: try container.decode(String.self, forKey: .username),
                                   password: try container.decode(String.self, forKey: .password),
                                   expiresAt: try container.decode(Int64.self, forKey: .expiresAt)))
        case "stun":
            self = .stun(id: id, address: address)
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown relay type '\(type)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .turn(let relay):
            try container.encode("turn", forKey: .type)
            try container.encode(relay.id, forKey: .id)
            try container.encode(relay.address, forKey: .addr)
            try container.encode(relay.username, forKey: .username)
            try container.encode(relay.password, forKey: .password)
            try container.encode(relay.expiresAt, forKey: .expiresAt)
        case .stun(let id, let address):
            try container.encode("stun", forKey: .type)
            try container.encode(id, forKey: .id)
            try container.encode(address, forKey: .addr)
        }
    }
}

/// A TURN relay and the credentials the portal minted for this component (spec §6). Realm is `firezone`.
public struct TurnRelay: Hashable, Sendable, CustomStringConvertible {
    public var id: RelayId
    public var address: SocketAddress
    public var username: String
    public var password: String
    /// Unix seconds; parsed but not used by connlib.
    public var expiresAt: Int64

    public init(id: RelayId, address: SocketAddress, username: String, password: String, expiresAt: Int64) {
        self.id = id
        self.address = address
        self.username = username
        self.password = password
        self.expiresAt = expiresAt
    }

    public var description: String { "TurnRelay(\(id) at \(address), user \(username), password [REDACTED])" }
}

/// `relays_presence` (spec §2.1): relays to drop and relays to add or replace.
public struct RelaysPresence: Hashable, Sendable, Codable {
    public var disconnectedIds: [RelayId]
    public var connected: [Relay]

    public init(disconnectedIds: [RelayId], connected: [Relay]) {
        self.disconnectedIds = disconnectedIds
        self.connected = connected
    }

    private enum CodingKeys: String, CodingKey {
        case disconnectedIds = "disconnected_ids", connected
    }
}
