import Dns
import IpPacket

/// Reverse-lookup names (`d.c.b.a.in-addr.arpa`, 32 nibbles then `ip6.arpa`) back to addresses.
enum ReverseName {
    static func address(of name: DnsName) -> IpAddress? {
        let labels = name.labels.map { String(decoding: $0, as: UTF8.self).lowercased() }
        if labels.count == 6, labels[4...] == ["in-addr", "arpa"] {
            let octets = labels[0..<4].reversed().compactMap { label -> UInt8? in
                guard label.count <= 3, label.allSatisfy(\.isASCII), label.allSatisfy(\.isNumber) else { return nil }
                return UInt8(label)
            }
            guard octets.count == 4 else { return nil }
            return .v4(IPv4Address(octets[0], octets[1], octets[2], octets[3]))
        }
        if labels.count == 34, labels[32...] == ["ip6", "arpa"] {
            var value: (high: UInt64, low: UInt64) = (0, 0)
            for (index, label) in labels[0..<32].reversed().enumerated() {
                guard label.count == 1, let nibble = UInt64(label, radix: 16) else { return nil }
                if index < 16 { value.high = value.high << 4 | nibble } else { value.low = value.low << 4 | nibble }
            }
            return .v6(IPv6Address(high: value.high, low: value.low))
        }
        return nil
    }
}
