import Dns
import FoundationEssentials
import IpPacket

/// The p2p control protocol's events (spec `tunnel-dns.md` §3), carried as JSON in IpPacket's control packet.
///
/// ```swift
/// let packet = try P2pControlEvent.assignedIps(AssignedIps(resource: id, domain: name, proxyIps: ips)).packet()
/// // … on the other side, after decryption:
/// if let event = try P2pControlEvent(packet) { … }          // nil: not a control packet, or an unknown kind
/// ```
public enum P2pControlEvent: Hashable, Sendable {
    /// Client → gateway: set up NAT from these proxy IPs to the domain's real addresses.
    case assignedIps(AssignedIps)
    /// Gateway → client: the outcome for a domain.
    case domainStatus(DomainStatusUpdate)
    /// Either way: the connection is being torn down.
    case goodbye

    /// The event kind byte.
    public var kind: UInt8 {
        switch self {
        case .assignedIps: 0
        case .domainStatus: 1
        case .goodbye: 2
        }
    }

    /// The control packet carrying this event.
    public func packet(pool: PacketBufferPool = .shared) throws(P2pControlError) -> IpPacket {
        let body = try jsonBody()
        do {
            return try IpPacket.p2pControl(kind: kind, body: Array(body.utf8), pool: pool)
        } catch {
            throw .packet(error)
        }
    }

    /// The JSON body, fields in declaration order as Firezone encodes them.
    public func jsonBody() throws(P2pControlError) -> String {
        switch self {
        case .assignedIps(let event):
            guard event.proxyIps.count == 4 || event.proxyIps.count == 8 else {
                throw .wrongProxyIpCount(event.proxyIps.count)
            }
            let ips = event.proxyIps.map { "\"\($0)\"" }.joined(separator: ",")
            return #"{"resource":"\#(event.resource)","domain":\#(JsonText.string(event.domain.description)),"proxy_ips":[\#(ips)]}"#
        case .domainStatus(let event):
            return #"{"resource":"\#(event.resource)","domain":\#(JsonText.string(event.domain.description)),"status":"\#(event.status.rawValue)"}"#
        case .goodbye:
            return ""
        }
    }

    /// Decodes a control packet. `nil` when the packet is not a control packet or carries a kind this side
    /// does not know (ignored for forward compatibility); throws when a known kind's body is invalid.
    public init?(_ packet: IpPacket) throws(P2pControlError) {
        guard let control = packet.p2pControl else { return nil }
        let body = packet.bytes(in: control.bodyRange)
        switch control.kind {
        case 0: self = .assignedIps(try AssignedIps(json: body))
        case 1: self = .domainStatus(try DomainStatusUpdate(json: body))
        case 2: self = .goodbye
        default: return nil
        }
    }
}

public struct AssignedIps: Hashable, Sendable {
    public var resource: ResourceId
    public var domain: DnsName
    public var proxyIps: [IpAddress]

    public init(resource: ResourceId, domain: DnsName, proxyIps: [IpAddress]) {
        self.resource = resource
        self.domain = domain
        self.proxyIps = proxyIps
    }

    init(json: [UInt8]) throws(P2pControlError) {
        struct Wire: Decodable {
            var resource: String
            var domain: String
            var proxy_ips: [String]
        }
        let wire: Wire = try decodeJson(json)
        guard let resource = ResourceId(wire.resource) else { throw .invalidField("resource", wire.resource) }
        guard let domain = DnsName(wire.domain) else { throw .invalidField("domain", wire.domain) }
        var ips: [IpAddress] = []
        for text in wire.proxy_ips {
            guard let ip = IpAddress(text) else { throw .invalidField("proxy_ips", text) }
            ips.append(ip)
        }
        self.init(resource: resource, domain: domain, proxyIps: ips)
    }
}

public struct DomainStatusUpdate: Hashable, Sendable {
    public var resource: ResourceId
    public var domain: DnsName
    public var status: DomainStatus

    public init(resource: ResourceId, domain: DnsName, status: DomainStatus) {
        self.resource = resource
        self.domain = domain
        self.status = status
    }

    init(json: [UInt8]) throws(P2pControlError) {
        struct Wire: Decodable {
            var resource: String
            var domain: String
            var status: String
        }
        let wire: Wire = try decodeJson(json)
        guard let resource = ResourceId(wire.resource) else { throw .invalidField("resource", wire.resource) }
        guard let domain = DnsName(wire.domain) else { throw .invalidField("domain", wire.domain) }
        // Any status this side does not know means Inactive (forward compatibility).
        self.init(resource: resource, domain: domain, status: DomainStatus(rawValue: wire.status) ?? .inactive)
    }
}

public enum DomainStatus: String, Hashable, Sendable {
    case active = "Active"
    case inactive = "Inactive"
}

/// Why a control event could not be encoded or decoded.
public enum P2pControlError: Error, Hashable, Sendable, CustomStringConvertible {
    case wrongProxyIpCount(Int)
    case invalidJson(String)
    case invalidField(String, String)
    case packet(IpPacketError)

    public var description: String {
        switch self {
        case .wrongProxyIpCount(let count): "AssignedIps needs 4 or 8 proxy IPs, not \(count)"
        case .invalidJson(let why): "control message body is not the expected JSON: \(why)"
        case let .invalidField(field, value): "control message field \(field) has an invalid value \"\(value.prefix(80))\""
        case .packet(let error): "control packet: \(error)"
        }
    }
}

private func decodeJson<T: Decodable>(_ bytes: [UInt8]) throws(P2pControlError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch {
        throw .invalidJson(String(describing: error).prefix(200).description)
    }
}
