// Addresses and networks are JSON strings in their text form ("100.64.0.1", "[fd00::1]:3478", "10.0.0.0/8").

extension IPv4Address: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder, as: "an IPv4 address", IPv4Address.init) }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, encoder) }
}

extension IPv6Address: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder, as: "an IPv6 address", IPv6Address.init) }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, encoder) }
}

extension IpAddress: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder, as: "an IP address", IpAddress.init) }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, encoder) }
}

extension SocketAddress: Codable {
    public init(from decoder: any Decoder) throws {
        self = try decodeText(decoder, as: "an IP:port socket address", SocketAddress.init)
    }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, encoder) }
}

extension IpNetwork: Codable {
    public init(from decoder: any Decoder) throws {
        self = try decodeText(decoder, as: "a canonical CIDR network", IpNetwork.init)
    }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, encoder) }
}

private func decodeText<Value>(_ decoder: any Decoder, as what: String, _ parse: (String) -> Value?) throws -> Value {
    let container = try decoder.singleValueContainer()
    let text = try container.decode(String.self)
    guard let value = parse(text) else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not \(what)")
    }
    return value
}

private func encodeText(_ text: String, _ encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(text)
}
