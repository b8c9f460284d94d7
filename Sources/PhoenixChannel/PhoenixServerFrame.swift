import SansIO

/// What a Phoenix server reads on a role's socket: the channel's own events, and the role's messages.
public enum PhoenixServerPayload<Message: PhoenixPayload>: PhoenixPayload {
    case join
    case leave
    case heartbeat
    case message(Message)

    public init(event: String, payload: any Decoder) throws {
        switch event {
        case "phx_join": self = .join
        case "phx_leave": self = .leave
        case "heartbeat": self = .heartbeat
        default: self = .message(try Message(event: event, payload: payload))
        }
    }
}

extension PhoenixInbound {
    /// The `phx_reply` to this frame: `{"status": status, "response": response}`, with its `ref` and `join_ref`
    /// echoed exactly as they came.
    public func reply(status: String, response: String = "{}") -> String {
        PhoenixServerFrame.push(topic: topic, event: "phx_reply",
                                payload: "{\"response\":\(response),\"status\":\(JsonText.string(status))}",
                                ref: ref?.json, joinRef: joinRef?.json)
    }
}

/// Frames a Phoenix server writes.
public enum PhoenixServerFrame {
    /// A server push (`ref` null) or reply, in Phoenix V1 JSON; `ref` and `joinRef` are JSON text.
    public static func push(topic: String, event: String, payload: String, ref: String? = nil, joinRef: String? = nil) -> String {
        var text = "{\"topic\":\(JsonText.string(topic)),\"event\":\(JsonText.string(event)),\"payload\":\(payload),\"ref\":\(ref ?? "null")"
        if let joinRef { text += ",\"join_ref\":\(joinRef)" }
        return text + "}"
    }
}
