import SansIO

/// The client's tunnel interface and DNS settings (spec §2.2).
public struct ClientInterface: Hashable, Sendable, Codable {
    public var ipv4: IPv4Address
    public var ipv6: IPv6Address
    /// Custom plain-DNS upstreams.
    public var upstreamDo53: [Do53Upstream]
    /// DNS-over-HTTPS upstreams.
    public var upstreamDoh: [DohUpstream]
    /// Legacy upstream list, used only when `upstreamDo53` is empty; absent when `nil`.
    public var upstreamDns: [LegacyDnsUpstream]?
    public var searchDomain: String?

    public init(ipv4: IPv4Address, ipv6: IPv6Address, upstreamDo53: [Do53Upstream] = [], upstreamDoh: [DohUpstream] = [],
                upstreamDns: [LegacyDnsUpstream]? = nil, searchDomain: String? = nil) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.upstreamDo53 = upstreamDo53
        self.upstreamDoh = upstreamDoh
        self.upstreamDns = upstreamDns
        self.searchDomain = searchDomain
    }

    /// The plain-DNS upstream IPs in effect: `upstream_do53`, else the IPs of the legacy list (ports ignored).
    public var effectiveDo53: [IpAddress] {
        upstreamDo53.isEmpty ? (upstreamDns ?? []).map(\.address.ip) : upstreamDo53.map(\.ip)
    }

    private enum CodingKeys: String, CodingKey {
        case ipv4, ipv6, upstreamDo53 = "upstream_do53", upstreamDoh = "upstream_doh", upstreamDns = "upstream_dns"
        case searchDomain = "search_domain"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ipv4 = try container.decode(IPv4Address.self, forKey: .ipv4)
        ipv6 = try container.decode(IPv6Address.self, forKey: .ipv6)
        upstreamDo53 = try container.decodeIfPresent([Do53Upstream].self, forKey: .upstreamDo53) ?? []
        upstreamDoh = try container.decodeIfPresent([DohUpstream].self, forKey: .upstreamDoh) ?? []
        upstreamDns = try container.decodeIfPresent([LegacyDnsUpstream].self, forKey: .upstreamDns)
        searchDomain = try container.decodeIfPresent(String.self, forKey: .searchDomain)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ipv4, forKey: .ipv4)
        try container.encode(ipv6, forKey: .ipv6)
        try container.encode(upstreamDo53, forKey: .upstreamDo53)
        try container.encode(upstreamDoh, forKey: .upstreamDoh)
        try container.encodeIfPresent(upstreamDns, forKey: .upstreamDns)
        try container.encode(searchDomain, forKey: .searchDomain)
    }
}

/// `{"ip": "1.1.1.1"}`
public struct Do53Upstream: Hashable, Sendable, Codable {
    public var ip: IpAddress
    public init(ip: IpAddress) { self.ip = ip }
}

/// `{"url": "https://dns.quad9.net/dns-query"}`
public struct DohUpstream: Hashable, Sendable, Codable {
    public var url: String
    public init(url: String) { self.url = url }
}

/// The legacy `{"protocol": "ip_port", "address": "1.1.1.1:53"}` form.
public struct LegacyDnsUpstream: Hashable, Sendable, Codable {
    public var address: SocketAddress

    public init(address: SocketAddress) { self.address = address }

    private enum CodingKeys: String, CodingKey { case `protocol`, address }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .protocol)
        guard kind == "ip_port" else {
            throw DecodingError.dataCorruptedError(forKey: .protocol, in: container, debugDescription: "unknown DNS upstream protocol '\(kind)'")
        }
        address = try container.decode(SocketAddress.self, forKey: .address)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("ip_port", forKey: .protocol)
        try container.encode(address, forKey: .address)
    }
}

/// The gateway's tunnel interface: its two addresses only.
public struct GatewayInterface: Hashable, Sendable, Codable {
    public var ipv4: IPv4Address
    public var ipv6: IPv6Address

    public init(ipv4: IPv4Address, ipv6: IPv6Address) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
}
