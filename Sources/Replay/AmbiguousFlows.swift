import Dns
import IpPacket
import PcapFile
import SansIO

/// Which resource the replay takes for a flow whose destination is ambiguous, when the flow itself does not say.
public enum ResourcePreference: String, Codable, Sendable, CaseIterable {
    case cidr, dns
}

/// A flow whose destination was both a captured answer for a DNS resource and inside a CIDR resource, and
/// how the replay sent it.
public struct AmbiguousFlow: Codable, Sendable, Hashable {
    /// "tcp 100.64.0.2:41000 → 10.20.0.5:8080"
    public var flow: String
    /// The name whose captured answer gave the destination.
    public var dnsName: String
    public var cidrResource: String
    public var replayedAs: ResourcePreference
    /// What decided it: the name the flow asked for, or the preference when it names none.
    public var reason: String
}

/// A flow as the client's side sees it, without the client's address (which the replay may translate).
struct ClientFlowKey: Hashable {
    var transport: UInt8
    var clientPort: UInt16
    var server: IpAddress
    var serverPort: UInt16

    init(_ packet: IpPacket) {
        transport = packet.nextHeader
        server = packet.destination
        if let tcp = packet.tcp {
            (clientPort, serverPort) = (tcp.sourcePort, tcp.destinationPort)
        } else if let udp = packet.udp {
            (clientPort, serverPort) = (udp.sourcePort, udp.destinationPort)
        } else {
            (clientPort, serverPort) = (0, 0)
        }
    }
}

/// Decides ambiguous flows: by the name in the flow's first bytes (HTTP Host, TLS server name) when there is
/// one, by the preference otherwise; every flow once, then its packets follow.
struct AmbiguityResolver {
    let preference: ResourcePreference
    private let names: [ClientFlowKey: FlowName]
    private var decided: [ClientFlowKey: Bool] = [:]
    private(set) var flows: [AmbiguousFlow] = []
    private(set) var flowCount = 0

    static let listLimit = 100
    static let scanLimit = 100_000

    init(preference: ResourcePreference, names: [ClientFlowKey: FlowName] = [:]) {
        self.preference = preference
        self.names = names
    }

    /// Reads the capture once for the names TCP flows ask for in their first payload (at most `scanLimit`
    /// flows). The capture is a file, so a flow's SYN can be sent where its first bytes, which come later, say.
    static func scanningNames(in path: String, preference: ResourcePreference) -> AmbiguityResolver {
        var names: [ClientFlowKey: FlowName] = [:]
        var unnamed: Set<ClientFlowKey> = []
        if let reader = try? PcapReader(path: path) {
            while names.count + unnamed.count < scanLimit, let record = try? reader.next() {
                guard let ip = LinkLayer.ipPacket(in: record.data, linkType: record.linkType),
                      let packet = try? IpPacket(copying: ip) else { continue }
                defer { PacketBufferPool.shared.recycle(packet) }
                guard let tcp = packet.tcp, !tcp.payloadRange.isEmpty else { continue }
                let key = ClientFlowKey(packet)
                guard names[key] == nil, !unnamed.contains(key) else { continue }
                if let name = packet.withUnsafeBytes({ FlowName.find(in: UnsafeRawBufferPointer(rebasing: $0[tcp.payloadRange])) }) {
                    names[key] = name
                } else {
                    unnamed.insert(key)
                }
            }
        }
        return AmbiguityResolver(preference: preference, names: names)
    }

    /// Whether the client's `packet`, to an address both `dnsName` resolved to and `cidr` contains, goes to the
    /// DNS resource (its proxy IP) rather than the CIDR resource.
    mutating func sendsToDnsResource(_ packet: IpPacket, dnsName: DnsName, cidr: IpNetwork) -> Bool {
        let key = ClientFlowKey(packet)
        if let known = decided[key] { return known }
        let toDns: Bool, reason: String
        let wanted = "\(dnsName)".lowercased().trimmingCharacters(in: ".")
        if let name = names[key] {
            toDns = name.host == wanted
            reason = toDns ? "\(name) is the DNS resource's name" : "\(name) is not \(wanted)"
        } else {
            toDns = preference == .dns
            reason = "nothing in the flow names a domain; --prefer \(preference.rawValue)"
        }
        guard decided.count < Self.scanLimit else { return toDns }  // every later flow is decided again, uncounted
        decided[key] = toDns
        flowCount += 1
        if flows.count < Self.listLimit {
            let transport = IpProtocolName.name(of: key.transport).lowercased()
            let ports = key.transport == 6 || key.transport == 17
            flows.append(AmbiguousFlow(
                flow: "\(transport) \(Self.endpoint(packet.source, key.clientPort, ports)) → \(Self.endpoint(key.server, key.serverPort, ports))",
                dnsName: wanted, cidrResource: "\(cidr)", replayedAs: toDns ? .dns : .cidr, reason: reason))
        }
        return toDns
    }

    /// "10.0.0.1:80", "[fd00::1]:80", or the address alone for a protocol without ports.
    private static func endpoint(_ address: IpAddress, _ port: UInt16, _ hasPorts: Bool) -> String {
        hasPorts ? SocketAddress(ip: address, port: port).description : "\(address)"
    }
}

private extension String {
    func trimmingCharacters(in character: Character) -> String {
        var text = Substring(self)
        while text.last == character { text.removeLast() }
        return String(text)
    }
}
