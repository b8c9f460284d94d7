/// An IP address and a UDP port: where a datagram comes from or goes to.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IpAddress
    public var port: UInt16

    public init(ip: IpAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `1.2.3.4:5678` or `[2001:db8::1]:5678`; `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":"),
                  let v6 = IPv6Address(text[text.index(after: text.startIndex)..<close]),
                  let port = UInt16(text[text.index(close, offsetBy: 2)...])
            else { return nil }
            self.init(ip: .v6(v6), port: port)
        } else {
            guard let colon = text.lastIndex(of: ":"), let v4 = IPv4Address(text[..<colon]),
                  let port = UInt16(text[text.index(after: colon)...])
            else { return nil }
            self.init(ip: .v4(v4), port: port)
        }
    }

    public var description: String {
        switch ip {
        case .v4(let address): "\(address):\(port)"
        case .v6(let address): "[\(address)]:\(port)"
        }
    }
}
