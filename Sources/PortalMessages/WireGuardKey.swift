import FoundationEssentials

/// A 32-byte WireGuard key as the portal writes it: standard base64 with padding, exactly 44 characters
/// (spec §2). Non-canonical base64 (stray trailing bits) is refused too.
public struct WireGuardKey: Hashable, Sendable, Codable {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    public init?(base64 text: String) {
        guard text.utf8.count == 44, let data = Data(base64Encoded: text), data.count == 32,
              data.base64EncodedString() == text
        else { return nil }
        bytes = Array(data)
    }

    public var base64: String { Data(bytes).base64EncodedString() }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard let key = Self(base64: try container.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a 32-byte base64 key")
        }
        self = key
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(base64)
    }
}

/// A public key: printed in full, as keys are in WireGuard tooling.
public typealias PublicKey = WireGuardKey

/// A WireGuard preshared key. Its description never shows the secret.
public struct PresharedKey: Hashable, Sendable, Codable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public let key: WireGuardKey

    public init(_ key: WireGuardKey) {
        self.key = key
    }

    public init(from decoder: any Decoder) throws {
        key = try WireGuardKey(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try key.encode(to: encoder)
    }

    public var description: String { "PresharedKey([REDACTED])" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
