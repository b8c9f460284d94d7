import PhoenixChannel
import SansIO

/// What the portal pushes a relay on topic `relay`: only `init`, an empty object, after the join (Firezone's
/// `portal_api/relay/channel.ex`). Our relay reports itself ready once it has it.
public enum RelayIngress: Hashable, Sendable, PhoenixPayload {
    case initialize

    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        guard event == "init" else { throw .unknownEvent(event) }
        _ = try PortalJson.decode(RelayInit.self, event: event, from: decoder)
        self = .initialize
    }

    /// The push's payload.
    public var payload: String { "{}" }
}

/// `init`'s payload: an object whose fields (none today) are ignored.
private struct RelayInit: Decodable {}

/// What a relay sends the portal on topic `relay` (the portal's side): its join with the secret every TURN
/// credential is derived from, heartbeats, and a leave.
public enum RelayEgress: Hashable, Sendable, PhoenixPayload {
    case join(RelayJoin)
    case leave
    case heartbeat

    public init(event: String, payload decoder: any Decoder) throws(PortalMessageError) {
        switch event {
        case "phx_join": self = .join(try PortalJson.decode(RelayJoin.self, event: event, from: decoder))
        case "phx_leave": self = .leave
        case "heartbeat": self = .heartbeat
        default: throw .unknownEvent(event)
        }
    }
}

/// The relay's `phx_join` payload: `{"stamp_secret": "…"}`.
public struct RelayJoin: Hashable, Sendable, Codable {
    /// The text the portal hashes into TURN passwords (spec `portal-phoenix.md` §6); Firezone's relay sends 32
    /// random bytes as hex.
    public var stampSecret: String

    public init(stampSecret: String) {
        self.stampSecret = stampSecret
    }

    private enum CodingKeys: String, CodingKey { case stampSecret = "stamp_secret" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        stampSecret = try container.decode(String.self, forKey: .stampSecret)
        guard !stampSecret.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .stampSecret, in: container, debugDescription: "empty")
        }
    }

    /// The payload as JSON.
    public var json: String { PortalJson.encode(self) }
}
