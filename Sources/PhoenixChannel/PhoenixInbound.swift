import FoundationEssentials
import SansIO

/// What a frame's `payload` decodes into: a role's messages (`init`, `create_flow` …) or the channel's own
/// (`phx_reply` …). It is decoded in the same JSON pass as the frame, from the event's name and the payload.
public protocol PhoenixPayload: Sendable {
    /// `payload` decodes the frame's `payload` value (`null` when absent). Throws for an event this side does
    /// not know and for a payload that does not fit the event.
    init(event: String, payload: any Decoder) throws
}

/// A frame's `ref` or `join_ref`: an integer (Firezone) or a string (the Phoenix JS client and most others).
public enum PhoenixRef: Hashable, Sendable, CustomStringConvertible {
    case integer(UInt64)
    case string(String)

    /// The ref as JSON, for echoing it back unchanged.
    public var json: String {
        switch self {
        case .integer(let value): String(value)
        case .string(let value): JsonText.string(value)
        }
    }

    public var description: String { json }
}

/// A frame whose envelope decoded but whose payload did not fit its event (or whose event is unknown).
public struct PhoenixPayloadError: Error, Hashable, Sendable, CustomStringConvertible {
    public var event: String
    public var reason: String
    /// The payload type's own error, when it threw one.
    public var underlying: (any Error & Sendable)?

    public init(event: String, reason: String, underlying: (any Error & Sendable)? = nil) {
        self.event = event
        self.reason = reason
        self.underlying = underlying
    }

    public var description: String { "'\(event)': \(reason)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { (lhs.event, lhs.reason) == (rhs.event, rhs.reason) }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(event)
        hasher.combine(reason)
    }
}

/// One Phoenix V1 JSON frame as it arrives (spec `portal-phoenix.md` §1.5), with its payload decoded as
/// `Payload`: the whole text is parsed once. A payload that does not decode leaves the frame readable, so the
/// receiver can say which event it could not use.
public struct PhoenixInbound<Payload: PhoenixPayload>: Sendable {
    public var topic: String
    public var event: String
    public var ref: PhoenixRef?
    public var joinRef: PhoenixRef?
    public var payload: Result<Payload, PhoenixPayloadError>

    public init(decoding text: String) throws(PhoenixFrameError) {
        do {
            self = try JSONDecoder().decode(Envelope.self, from: Data(text.utf8)).frame
        } catch let error as PhoenixFrameError {
            throw error
        } catch {
            throw .notAJsonObject
        }
    }

    private struct Envelope: Decodable {
        var frame: PhoenixInbound

        private enum Key: String, CodingKey { case topic, event, payload, ref, joinRef = "join_ref" }

        init(from decoder: any Decoder) throws {
            let container: KeyedDecodingContainer<Key>
            do {
                container = try decoder.container(keyedBy: Key.self)
            } catch {
                throw PhoenixFrameError.notAJsonObject
            }
            let topic = try Self.string(container, .topic)
            let event = try Self.string(container, .event)
            let payload: Result<Payload, PhoenixPayloadError>
            do {
                payload = .success(try Payload(event: event, payload: try container.superDecoder(forKey: .payload)))
            } catch {
                payload = .failure(PhoenixPayloadError(event: event, reason: "\(error)", underlying: error))
            }
            frame = PhoenixInbound(topic: topic, event: event, ref: try Self.ref(container, .ref),
                                   joinRef: try Self.ref(container, .joinRef), payload: payload)
        }

        private static func string(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> String {
            guard let value = try? container.decode(String.self, forKey: key) else { throw PhoenixFrameError.missingField(key.stringValue) }
            return value
        }

        private static func ref(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> PhoenixRef? {
            guard container.contains(key), (try? container.decodeNil(forKey: key)) == false else { return nil }
            if let integer = try? container.decode(UInt64.self, forKey: key) { return .integer(integer) }
            if let string = try? container.decode(String.self, forKey: key) { return .string(string) }
            throw PhoenixFrameError.refNotAnInteger
        }
    }

    private init(topic: String, event: String, ref: PhoenixRef?, joinRef: PhoenixRef?, payload: Result<Payload, PhoenixPayloadError>) {
        self.topic = topic
        self.event = event
        self.ref = ref
        self.joinRef = joinRef
        self.payload = payload
    }
}

/// Any event with its payload kept as JSON text, compact with sorted keys: for tools and tests that look at
/// frames without a role's types.
public struct PhoenixRawPayload: PhoenixPayload, Hashable {
    public var event: String
    public var json: String

    public init(event: String, json: String) {
        self.event = event
        self.json = json
    }

    public init(event: String, payload: any Decoder) throws {
        self.event = event
        json = try JsonValue(from: payload).json
    }
}
