/// A portal-assigned UUID, typed by what it names so a gateway id cannot be passed where a resource id is
/// meant. Two words, so hashing and comparing cost what two integers cost. Its text is the hyphenated form in
/// lowercase, as Firezone's Rust `uuid` crate writes it; JSON carries it as that string.
///
/// ```swift
/// let resource = ResourceId("F16ECFA0-A94F-4BFD-A2EF-1CC1F2EF3DA3")!   // either case
/// resource.description                                                 // "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3"
/// ```
@frozen
public struct PortalId<Tag>: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    /// The first eight bytes, big-endian.
    public let high: UInt64
    /// The last eight bytes, big-endian.
    public let low: UInt64

    @inlinable
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses the hyphenated text form, 8-4-4-4-12 hex digits in either case; `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        var digits = 0
        for (offset, byte) in text.utf8.enumerated() {
            if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let value = Self.hexValue(byte), digits < 32 else { return nil }
            if digits < 16 { high = high << 4 | UInt64(value) } else { low = low << 4 | UInt64(value) }
            digits += 1
        }
        guard digits == 32 else { return nil }
        self.init(high: high, low: low)
    }

    /// A fresh random (version 4) id.
    public static func random() -> Self {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// A random (version 4) id drawn from `generator`.
    public static func random(using generator: inout some RandomNumberGenerator) -> Self {
        let high = generator.next() & ~0xF000 | 0x4000
        let low = generator.next() & ~(0xC000_0000_0000_0000 as UInt64) | 0x8000_0000_0000_0000
        return Self(high: high, low: low)
    }

    public var description: String {
        let hex = Self.hex(high) + Self.hex(low)
        let groups = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return groups.joined(separator: "-")
    }

    /// The same order as the lowercase text.
    @inlinable
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = Self(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a UUID")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func hex(_ word: UInt64) -> String {
        let digits = String(word, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

public enum ResourceTag {}
public enum GatewayTag {}
public enum ClientTag {}
public enum RelayTag {}
public enum SiteTag {}

/// A resource: a CIDR range, a DNS pattern or the Internet (spec `portal-phoenix.md` §3).
public typealias ResourceId = PortalId<ResourceTag>
public typealias GatewayId = PortalId<GatewayTag>
public typealias ClientId = PortalId<ClientTag>
public typealias RelayId = PortalId<RelayTag>
/// A site, also called a gateway group.
public typealias SiteId = PortalId<SiteTag>
