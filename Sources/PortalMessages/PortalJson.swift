import FoundationEssentials
import PhoenixChannel

/// Why a portal message was refused. The text names the event and the JSON path of the fault.
public enum PortalMessageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An event this role does not handle; egress ones get the reply `unknown_message` from the portal.
    case unknownEvent(String)
    /// The payload did not decode.
    case malformed(event: String, reason: String)

    public var description: String {
        switch self {
        case .unknownEvent(let event): "unknown event '\(event)'"
        case .malformed(let event, let reason): "malformed '\(event)' payload: \(reason)"
        }
    }
}

/// Payload coding shared by both roles: compact JSON with sorted keys.
enum PortalJson {
    /// `T` from the payload decoder of a frame being decoded; any failure is the event's malformed payload.
    static func decode<T: Decodable>(_ type: T.Type, event: String, from decoder: any Decoder) throws(PortalMessageError) -> T {
        do {
            return try T(from: decoder)
        } catch {
            throw .malformed(event: event, reason: describe(error))
        }
    }

    /// A message from payload text alone (tests, tools, the golden examples), decoded as it is inside a frame;
    /// list entries left out are appended to `skipped`.
    static func decode<Message: PhoenixPayload>(_ type: Message.Type, event: String, payload: String,
                                                skipped: inout [SkippedEntry]) throws(PortalMessageError) -> Message {
        let collector = SkippedEntries()
        let decoder = JSONDecoder()
        decoder.userInfo[PayloadCapture<Message>.eventKey] = event
        do {
            let captured = try SkippedEntries.$current.withValue(collector) {
                try decoder.decode(PayloadCapture<Message>.self, from: Data(payload.utf8))
            }
            skipped += collector.all
            return captured.message
        } catch let error as PortalMessageError {
            throw error
        } catch {
            throw .malformed(event: event, reason: describe(error))
        }
    }

    /// Compact JSON with sorted keys, rendered for `view` (see ``PortalView``).
    static func encode(_ payload: some Encodable, view: PortalView = .v1) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.userInfo[PortalView.userInfoKey] = view
        do {
            return String(decoding: try encoder.encode(payload), as: UTF8.self)
        } catch {
            preconditionFailure("portal payloads always encode: \(error)")
        }
    }

    /// `resources[0].address: '10.0.0.1/8' is not a canonical CIDR network`
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .dataCorrupted(let context):
            return at(context.codingPath, context.underlyingError == nil ? context.debugDescription : "not valid JSON")
        case .keyNotFound(let key, let context):
            return at(context.codingPath, "missing '\(key.stringValue)'")
        case .typeMismatch(let type, let context):
            return at(context.codingPath, "expected \(jsonName(of: type))")
        case .valueNotFound(let type, let context):
            return at(context.codingPath, "expected \(jsonName(of: type)), found null")
        @unknown default:
            return "\(error)"
        }
    }

    private static func at(_ path: [any CodingKey], _ reason: String) -> String {
        guard !path.isEmpty else { return reason }
        let text = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return String(text.drop { $0 == "." }) + ": " + reason
    }

    private static func jsonName(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is any Numeric.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}

/// Runs a message's frame decoding on a bare payload: the event comes through `userInfo`.
private struct PayloadCapture<Message: PhoenixPayload>: Decodable {
    static var eventKey: CodingUserInfoKey { CodingUserInfoKey(rawValue: "firezone.event")! }
    var message: Message

    init(from decoder: any Decoder) throws {
        message = try Message(event: decoder.userInfo[Self.eventKey] as? String ?? "", payload: decoder)
    }
}
