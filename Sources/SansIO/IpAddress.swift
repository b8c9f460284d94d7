/// An IPv4 or IPv6 address, stored inline (no heap allocation). Shared by every layer: packets, STUN, ICE.
public enum IpAddress: Hashable, Sendable, Comparable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// The IP version of this address.
    public var version: IpVersion {
        switch self {
        case .v4: .v4
        case .v6: .v6
        }
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text; `nil` when the text is neither.
    public init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) {
            self = .v4(v4)
        } else if let v6 = IPv6Address(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }
}

/// The version of an IP packet or address.
public enum IpVersion: UInt8, Hashable, Sendable, CustomStringConvertible {
    case v4 = 4
    case v6 = 6

    public var description: String {
        switch self {
        case .v4: "IPv4"
        case .v6: "IPv6"
        }
    }
}

extension IpAddress: CustomStringConvertible {
    public var description: String {
        switch self {
        case .v4(let address): address.description
        case .v6(let address): address.description
        }
    }
}

/// An IPv4 address as its 32-bit big-endian value, e.g. `10.0.0.1` is `0x0A00_0001`.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The address as a host-order integer (`a.b.c.d` is `a << 24 | b << 16 | c << 8 | d`).
    public var value: UInt32

    public init(_ value: UInt32) {
        self.value = value
    }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text (`"100.64.0.1"`); leading zeros and out-of-range octets are rejected.
    public init?(_ text: some StringProtocol) {
        var value: UInt32 = 0
        var octets = 0
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard part.count >= 1, part.count <= 3, part.allSatisfy(\.isASCIIDigit),
                  !(part.count > 1 && part.first == "0"),
                  let octet = UInt8(part)
            else { return nil }
            value = value << 8 | UInt32(octet)
            octets += 1
        }
        guard octets == 4 else { return nil }
        self.value = value
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
}

/// An IPv6 address as two 64-bit big-endian halves, e.g. `fd00::1` has `high == 0xfd00 << 48`, `low == 1`.
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The first 8 bytes in network order, as a host-order integer.
    public var high: UInt64
    /// The last 8 bytes in network order, as a host-order integer.
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The unspecified address `::`.
    public static let unspecified = IPv6Address(high: 0, low: 0)

    /// The address's eight 16-bit groups, most significant first.
    public var groups: [UInt16] {
        (0..<8).map(group(at:))
    }

    /// The 16-bit group at `index` (0...7), most significant first.
    public func group(at index: Int) -> UInt16 {
        let half = index < 4 ? high : low
        return UInt16(truncatingIfNeeded: half >> (UInt64(3 - index % 4) * 16))
    }

    /// Parses RFC 4291 text: full, `::`-compressed, and with a trailing dotted-quad (`::ffff:1.2.3.4`).
    public init?(_ text: some StringProtocol) {
        guard let groups = IPv6TextParser.groups(of: Substring(text)) else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<4 { high = high << 16 | UInt64(groups[index]) }
        for index in 4..<8 { low = low << 16 | UInt64(groups[index]) }
        self.init(high: high, low: low)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// RFC 5952 text: lowercase, the longest run of two or more zero groups compressed (the first of equal
    /// runs), and IPv4-mapped addresses in mixed notation (`::ffff:192.0.2.1`), as tshark prints them.
    public var description: String {
        if high == 0, low >> 32 == 0xFFFF {
            return "::ffff:" + IPv4Address(UInt32(truncatingIfNeeded: low)).description
        }
        let groups = self.groups
        var bestStart = -1
        var bestLength = 1
        var runStart = 0
        for index in 0...8 {
            if index < 8, groups[index] == 0 { continue }
            let runLength = index - runStart
            if runLength > bestLength {
                bestStart = runStart
                bestLength = runLength
            }
            runStart = index + 1
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

private enum IPv6TextParser {
    static func groups(of text: Substring) -> [UInt16]? {
        let halves = text.split(separator: "::", maxSplits: 2, omittingEmptySubsequences: false)
        switch halves.count {
        case 1:
            guard let groups = parseGroups(halves[0]), groups.count == 8 else { return nil }
            return groups
        case 2:
            guard let head = parseGroups(halves[0]), let tail = parseGroups(halves[1]),
                  head.count + tail.count <= 7
            else { return nil }
            return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        default:
            return nil
        }
    }

    /// Colon-separated hex groups, the last of which may be a dotted quad (two groups).
    private static func parseGroups(_ text: Substring) -> [UInt16]? {
        guard !text.isEmpty else { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, part.contains(".") {
                guard let v4 = IPv4Address(part) else { return nil }
                groups.append(UInt16(v4.value >> 16))
                groups.append(UInt16(v4.value & 0xFFFF))
                continue
            }
            guard (1...4).contains(part.count), part.allSatisfy(\.isHexDigit),
                  let group = UInt16(part, radix: 16)
            else { return nil }
            groups.append(group)
        }
        return groups
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
