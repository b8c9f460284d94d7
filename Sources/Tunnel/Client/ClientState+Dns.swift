import DnsNat
import IpPacket
import PortalMessages
import SansIO

extension ClientState {
    /// The port of the gateway's DNS server on its TUN addresses (spec §5.9).
    static let gatewayDnsPort: UInt16 = 53_535

    /// A UDP packet to a sentinel (spec §4.6.3): answered locally, recursed through the tunnel, handed to the
    /// app to recurse, or — when the sentinel has no upstream — routed as ordinary traffic (`false`).
    func handleDnsQuery(_ packet: IpPacket, now: Instant) throws(TunnelError) -> Bool {
        let knownDomains = dns.stub.allocator.records.count
        defer {
            if dns.stub.allocator.records.count != knownDomains { events.append(.proxyIpRecordsChanged(proxyIpRecords)) }
        }
        switch dns.handleQueryPacket(packet, now: now) {
        case .reply(let answer, let domain):
            if let domain { dnsNat.recreate(domain: domain) }
            tunOutbox.append(answer)
        case let .recurseLocally(pending, upstream):
            guard case .do53(let server) = upstream, interface?.effectiveDo53.isEmpty == false, resource(for: server) != nil else {
                events.append(.recurseDns(pending, upstream: upstream))
                return true
            }
            try queryThroughTunnel(pending, server: SocketAddress(ip: server, port: 53), now: now)
        case let .recurseInSite(pending, dnsResource):
            try recurseInSite(pending, resource: ResourceId(dnsResource.description), query: packet, now: now)
        case .rejected:
            statistics.count(.badDnsQuery)
        case .notDns:
            return false
        }
        return true
    }

    /// Whether a decrypted packet answers one of our in-tunnel queries; if so the asker gets the answer.
    func consumeInTunnelDnsAnswer(_ packet: IpPacket, now: Instant) throws(TunnelError) -> Bool {
        guard !inTunnelDns.isEmpty, packet.isUdp, let (pending, response) = inTunnelDns.answer(in: packet) else { return false }
        try answer(pending, with: response, now: now)
        return true
    }

    /// Fails the in-tunnel queries whose time is up with SERVFAIL.
    func expireInTunnelDnsQueries(now: Instant) {
        for pending in inTunnelDns.expire(now: now) { try? answer(pending, with: nil, now: now) }
    }

    func answer(_ pending: ClientDns.PendingQuery, with response: DnsMessage?, now: Instant) throws(TunnelError) {
        do {
            tunOutbox.append(try dns.answer(pending, response: response, now: now))
        } catch {
            throw .packet(error)
        }
    }

    // MARK: Details

    /// SRV/TXT for a DNS resource (spec §4.6.6): to the authorised gateway's `TUN IP:53535` in the sentinel's
    /// family; without one, the query packet waits behind a connection intent like any first packet.
    private func recurseInSite(
        _ pending: ClientDns.PendingQuery, resource: ResourceId?, query: IpPacket, now: Instant
    ) throws(TunnelError) {
        guard let resource, resources[resource] != nil else { return try answer(pending, with: nil, now: now) }
        guard let gateway = authorized[resource], let peer = peers[gateway] else {
            requestFlow(for: resource, buffering: query, now: now)
            return
        }
        let server: IpAddress = pending.sentinel.version == .v4 ? .v4(peer.ipv4) : .v6(peer.ipv6)
        try queryThroughTunnel(pending, server: SocketAddress(ip: server, port: Self.gatewayDnsPort), now: now)
    }

    /// Sends the query from our TUN address of the server's family as ordinary traffic, which may raise a
    /// connection intent. A query that cannot even be sent is answered with SERVFAIL at once.
    private func queryThroughTunnel(_ pending: ClientDns.PendingQuery, server: SocketAddress, now: Instant) throws(TunnelError) {
        guard let config = tunConfig else { return try answer(pending, with: nil, now: now) }
        let local: IpAddress = server.ip.version == .v4 ? .v4(config.ipv4) : .v6(config.ipv6)
        guard let packet = inTunnelDns.packet(for: pending, from: local, to: server, now: now) else {
            return try answer(pending, with: nil, now: now)
        }
        resend(packet, now: now)
    }
}
