import IpPacket
import PcapFile
import SansIO

/// Which addresses of a capture are the client's, and the tunnel addresses they become.
///
/// A capture taken on a client with Firezone's address plan already uses tunnel addresses: the first source
/// in 100.64.0.0/11 (and fd00:2021:1111::/107) is the client. A capture taken elsewhere (a laptop on a LAN)
/// has the client at some other address; then the source of the first packet to a CIDR resource is the
/// client, and the replay translates it to 100.64.0.2 (or fd00:2021:1111::2) both ways.
struct ClientAddressPlan {
    var ipv4 = IPv4Address(100, 64, 0, 2)
    var ipv6 = IPv6Address("fd00:2021:1111::2")!
    /// Capture address → tunnel address, for a client recorded outside the tunnel's ranges.
    private(set) var translations: [IpAddress: IpAddress] = [:]

    static let tunnelV4 = IpNetwork("100.64.0.0/11")!
    static let tunnelV6 = IpNetwork("fd00:2021:1111::/107")!

    /// Scans the start of the capture (at most 100,000 records). A damaged file is not an error here: the
    /// main pass reports the damage with everything before it.
    static func find(in path: String, resources: [IpNetwork]) -> ClientAddressPlan {
        var tunnel: [IpVersion: IpAddress] = [:], resourceClient: [IpVersion: IpAddress] = [:]
        if let reader = try? PcapReader(path: path) {
            var scanned = 0
            while scanned < 100_000, tunnel.count < 2, let record = try? reader.next() {
                scanned += 1
                guard let ip = LinkLayer.ipPacket(in: record.data, linkType: record.linkType),
                      let packet = try? IpPacket(copying: ip) else { continue }
                let (source, destination) = (packet.source, packet.destination)
                PacketBufferPool.shared.recycle(packet)
                if tunnel[source.version] == nil, tunnelV4.contains(source) || tunnelV6.contains(source) {
                    tunnel[source.version] = source
                }
                let toResource = resources.contains { $0.contains(destination) } && !resources.contains { $0.contains(source) }
                if resourceClient[source.version] == nil, toResource { resourceClient[source.version] = source }
            }
        }
        var plan = ClientAddressPlan()
        if case .v4(let address)? = tunnel[.v4] { plan.ipv4 = address }
        if case .v6(let address)? = tunnel[.v6] { plan.ipv6 = address }
        if tunnel[.v4] == nil, let recorded = resourceClient[.v4] { plan.translations[recorded] = .v4(plan.ipv4) }
        if tunnel[.v6] == nil, let recorded = resourceClient[.v6] { plan.translations[recorded] = .v6(plan.ipv6) }
        return plan
    }

    func isClient(_ address: IpAddress) -> Bool {
        address == .v4(ipv4) || address == .v6(ipv6)
    }

    /// Puts a recorded packet into the tunnel's address plan (checksums patched).
    func translate(_ packet: inout IpPacket) {
        guard !translations.isEmpty else { return }
        if let address = translations[packet.source] { try? packet.setSource(address) }
        if let address = translations[packet.destination] { try? packet.setDestination(address) }
    }

    /// The client's addresses for reports: `100.64.0.2`, or `192.168.1.5 → 100.64.0.2` when translated.
    var descriptions: [String] {
        [IpAddress.v4(ipv4), .v6(ipv6)].map { tunnel in
            translations.first { $0.value == tunnel }.map { "\($0.key) → \(tunnel)" } ?? tunnel.description
        }
    }
}
