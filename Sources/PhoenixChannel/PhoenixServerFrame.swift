import FoundationEssentials
import SansIO

/// A Phoenix V1 frame as a server reads it: refs may be integers (Firezone) or strings (the Phoenix JS client
/// and most others), and are echoed back exactly as they came, with `join_ref`.
public struct PhoenixServerFrame: Sendable, Hashable {
    public var topic: String
    public var event: String
    /// The payload's JSON text (`null` when absent), object keys sorted.
    public var payload: String
    /// The ref's JSON text (`1`, `"1"`), `nil` when absent or null.
    public var ref: String?
    /// The join ref's JSON text, `nil` when absent or null.
    public var joinRef: String?

    public init(decoding text: String) throws(PhoenixFrameError) {
        let (topic, event, object) = try PhoenixFrame.fields(of: text)
        self.topic = topic
        self.event = event
        payload = (object["payload"] ?? .null).json
        ref = try Self.refText(object["ref"])
        joinRef = try Self.refText(object["join_ref"])
    }

    /// The `phx_reply` to this frame: `{"status": status, "response": response}`.
    public func reply(status: String, response: String = "{}") -> String {
        Self.push(topic: topic, event: "phx_reply", payload: "{\"response\":\(response),\"status\":\(JsonText.string(status))}",
                  ref: ref, joinRef: joinRef)
    }

    /// A server push (`ref` null) or reply, in Phoenix V1 JSON.
    public static func push(topic: String, event: String, payload: String, ref: String? = nil, joinRef: String? = nil) -> String {
        var text = "{\"topic\":\(JsonText.string(topic)),\"event\":\(JsonText.string(event)),\"payload\":\(payload),\"ref\":\(ref ?? "null")"
        if let joinRef { text += ",\"join_ref\":\(joinRef)" }
        return text + "}"
    }

    private static func refText(_ value: JsonValue?) throws(PhoenixFrameError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .number(let number)? where number.rounded() == number && number >= 0: return value?.json
        case .string?: return value?.json
        default: throw .refNotAnInteger
        }
    }
}
