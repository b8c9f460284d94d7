import FoundationEssentials
import SansIO

/// One Phoenix V1 JSON frame (spec `portal-phoenix.md` §1.5) with its payload as JSON text: what the channel
/// sends, and what tools and tests read without a role's types (``PhoenixInbound`` reads a role's frames).
public struct PhoenixFrame: Sendable, Hashable {
    public var topic: String
    public var event: String
    /// The payload's JSON text (`null` when absent).
    public var payload: String
    /// An integer ref, or `nil` for the portal's pushes.
    public var ref: UInt64?

    public init(topic: String, event: String, payload: String = "null", ref: UInt64?) {
        self.topic = topic
        self.event = event
        self.payload = payload
        self.ref = ref
    }

    /// Egress text, keys in Firezone's order; `payload` is always present.
    public func encoded() -> String {
        "{\"topic\":\(JsonText.string(topic)),\"event\":\(JsonText.string(event)),\"payload\":\(payload),\"ref\":\(ref.map(String.init) ?? "null")}"
    }

    /// Decodes an ingress frame, its payload kept as canonical JSON text (compact, keys sorted). A string
    /// `ref` (the Phoenix JS client's style) is refused, as Firezone does.
    public init(decoding text: String) throws(PhoenixFrameError) {
        let frame = try PhoenixInbound<PhoenixRawPayload>(decoding: text)
        switch frame.ref {
        case nil: ref = nil
        case .integer(let integer)?: ref = integer
        case .string?: throw .refNotAnInteger
        }
        guard case .success(let payload) = frame.payload else { throw .notAJsonObject }
        topic = frame.topic
        event = frame.event
        self.payload = payload.json
    }
}

/// Why an ingress frame was dropped.
public enum PhoenixFrameError: Error, Hashable, Sendable, CustomStringConvertible {
    case notAJsonObject
    case missingField(String)
    case refNotAnInteger

    public var description: String {
        switch self {
        case .notAJsonObject: "the frame is not a JSON object"
        case .missingField(let field): "the frame has no string '\(field)'"
        case .refNotAnInteger: "the frame's ref is not null or an integer"
        }
    }
}

/// Enough of JSON to carry a payload through unchanged.
indirect enum JsonValue: Decodable, Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JsonValue])
    case object([(String, JsonValue)])

    init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: AnyKey.self) {
            // Sorted keys: the decoder's key order is not stable, and the payload text must be.
            self = .object(try container.allKeys.map { ($0.stringValue, try container.decode(JsonValue.self, forKey: $0)) }
                .sorted { $0.0 < $1.0 })
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var items: [JsonValue] = []
            while !container.isAtEnd { items.append(try container.decode(JsonValue.self)) }
            self = .array(items)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let bool = try? single.decode(Bool.self) { self = .bool(bool) }
        else if let number = try? single.decode(Double.self) { self = .number(number) }
        else { self = .string(try single.decode(String.self)) }
    }

    static func == (lhs: JsonValue, rhs: JsonValue) -> Bool { lhs.json == rhs.json }
    func hash(into hasher: inout Hasher) { hasher.combine(json) }

    /// Compact JSON text.
    var json: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .number(let value): value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .string(let value): JsonText.string(value)
        case .array(let items): "[" + items.map(\.json).joined(separator: ",") + "]"
        case .object(let members): "{" + members.map { JsonText.string($0.0) + ":" + $0.1.json }.joined(separator: ",") + "}"
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
