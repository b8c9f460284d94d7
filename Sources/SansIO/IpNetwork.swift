/// An IP network in CIDR form (`172.16.0.0/12`, `fd00:2021:1111::/107`): an address and a prefix length.
public struct IpNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IpAddress
    public let prefixLength: UInt8

    /// A network from its first address; `nil` when the prefix is too long for the family or host bits are set.
    public init?(address: IpAddress, prefixLength: UInt8) {
        guard prefixLength <= address.bitWidth, Self.hostBitsAreZero(address, prefixLength) else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses canonical CIDR text: the prefix length is required and the host bits must be zero, as the
    /// portal sends it (spec `portal-phoenix.md` §2.4).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IpAddress(parts[0]),
              (1...3).contains(parts[1].count), parts[1].allSatisfy(\.isASCIIDigit),
              !(parts[1].count > 1 && parts[1].first == "0"),
              let prefixLength = UInt8(parts[1])
        else { return nil }
        self.init(address: address, prefixLength: prefixLength)
    }

    /// Whether `candidate` lies inside this network.
    public func contains(_ candidate: IpAddress) -> Bool {
        switch (address, candidate) {
        case (.v4(let network), .v4(let other)):
            prefixLength == 0 || (network.value ^ other.value) >> (32 - UInt32(prefixLength)) == 0
        case (.v6(let network), .v6(let other)):
            Self.leadingBitsEqual(network, other, count: Int(prefixLength))
        default:
            false
        }
    }

    public var description: String { "\(address)/\(prefixLength)" }

    private static func hostBitsAreZero(_ address: IpAddress, _ prefixLength: UInt8) -> Bool {
        switch address {
        case .v4(let v4):
            prefixLength == 32 || v4.value << UInt32(prefixLength) == 0
        case .v6(let v6):
            switch prefixLength {
            case 128: true
            case 64...: v6.low << UInt64(prefixLength - 64) == 0
            default: v6.low == 0 && (prefixLength == 0 ? v6.high == 0 : v6.high << UInt64(prefixLength) == 0)
            }
        }
    }

    private static func leadingBitsEqual(_ lhs: IPv6Address, _ rhs: IPv6Address, count: Int) -> Bool {
        let high = lhs.high ^ rhs.high
        let low = lhs.low ^ rhs.low
        if count <= 64 { return count == 0 || high >> UInt64(64 - count) == 0 }
        return high == 0 && low >> UInt64(128 - count) == 0
    }
}

extension IpAddress {
    /// 32 for IPv4, 128 for IPv6.
    public var bitWidth: UInt8 {
        switch self {
        case .v4: 32
        case .v6: 128
        }
    }
}
