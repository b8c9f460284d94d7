import Dns
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
        let knownDomains = dns.knownDomainCount
        defer { reportNewProxyIps(knownDomains) }
        switch dns.resolver.handleQueryPacket(packet, now: now) {
        case .reply(let answer, let domain):
            if let domain { dnsNat.recreate(domain: domain) }
            tunOutbox.append(answer)
        case let .recurseLocally(pending, upstream):
            try recurseLocally(pending, upstream: upstream, now: now)
        case let .recurseInSite(pending, dnsResource):
            try recurseInSite(pending, resource: dnsResource, query: packet, now: now)
        case .rejected:
            statistics.count(.badDnsQuery)
        case .notDns:
            return false
        }
        return true
    }

    /// A TCP segment to a sentinel (spec §4.6.2): port 53 of a mapped sentinel goes to the TCP DNS server,
    /// whose complete queries are handled like UDP ones and answered on their connection. Anything else is
    /// routed as ordinary traffic (`false`).
    func handleTcpDnsSegment(_ packet: IpPacket, now: Instant) throws(TunnelError) -> Bool {
        guard packet.tcp?.destinationPort == 53, dns.resolver.sentinels.upstream(for: packet.destination) != nil else { return false }
        dns.tcpServer.handle(packet, now: now)
        let knownDomains = dns.knownDomainCount
        defer { reportNewProxyIps(knownDomains) }
        while let query = dns.tcpServer.pollQuery() {
            let pending = ClientDns.PendingQuery(query: query.message, asker: query.connection.remote, sentinel: query.connection.local.ip)
            guard query.message.questions.count == 1 else {
                statistics.count(.badDnsQuery)
                dns.tcpServer.respond(DnsMessage.response(to: query.message, rcode: .formatError), to: query.connection, now: now)
                continue
            }
            switch dns.resolver.decide(pending, now: now) {
            case let .answer(answer, domain)?:
                if let domain { dnsNat.recreate(domain: domain) }
                dns.tcpServer.respond(answer, to: query.connection, now: now)
            case let .recurseLocally(pending, upstream)?:
                dns.rememberTcpAsker(pending, on: query.connection)
                try recurseLocally(pending, upstream: upstream, overTcp: true, now: now)
            case let .recurseInSite(pending, dnsResource)?:
                dns.rememberTcpAsker(pending, on: query.connection)
                try recurseInSite(pending, resource: dnsResource, query: nil, now: now)
            case nil:
                dns.tcpServer.respond(DnsMessage.response(to: query.message, rcode: .serverFailure), to: query.connection, now: now)
            }
        }
        return true
    }

    /// Whether a decrypted packet answers one of our in-tunnel queries; if so the asker gets the answer.
    func consumeInTunnelDnsAnswer(_ packet: IpPacket, now: Instant) throws(TunnelError) -> Bool {
        guard !dns.udpClient.isEmpty, packet.isUdp, let (pending, response) = dns.udpClient.answer(in: packet) else { return false }
        try answer(pending, with: response, now: now)
        return true
    }

    /// Hands the in-tunnel TCP client's answers to their askers and its segments to the tunnel.
    func drainTcpDnsClient(now: Instant) {
        while let (pending, response) = dns.tcpClient.pollAnswer() { try? answer(pending, with: response, now: now) }
        while let packet = dns.tcpClient.pollPacket() { resend(packet, now: now) }
    }

    /// Answers the asker on the transport its query came in on.
    func answer(_ pending: ClientDns.PendingQuery, with response: DnsMessage?, now: Instant) throws(TunnelError) {
        do {
            if let packet = try dns.answer(pending, with: response, now: now) { tunOutbox.append(packet) }
        } catch {
            throw .packet(error)
        }
    }

    // MARK: Details

    private func reportNewProxyIps(_ knownDomains: Int) {
        if dns.knownDomainCount != knownDomains { events.append(.proxyIpRecordsChanged(proxyIpRecords)) }
    }

    /// Through the tunnel when the portal's Do53 upstream lies inside a resource, otherwise by the app.
    private func recurseLocally(
        _ pending: ClientDns.PendingQuery, upstream: DnsUpstream, overTcp: Bool = false, now: Instant
    ) throws(TunnelError) {
        guard case .do53(let server) = upstream, interface?.effectiveDo53.isEmpty == false, resources.resource(for: server) != nil else {
            events.append(.recurseDns(pending, upstream: upstream))
            return
        }
        try queryThroughTunnel(pending, server: SocketAddress(ip: server, port: 53), overTcp: overTcp, now: now)
    }

    /// SRV/TXT for a DNS resource (spec §4.6.6): to the authorised gateway's `TUN IP:53535` in the sentinel's
    /// family, over the transport the query came in on; without one, the UDP query packet waits behind a
    /// connection intent like any first packet. A TCP query (`query` nil) cannot wait in the packet buffer: it
    /// raises the intent and fails with SERVFAIL, and the asker's retry finds the gateway.
    private func recurseInSite(
        _ pending: ClientDns.PendingQuery, resource: ResourceId, query: IpPacket?, now: Instant
    ) throws(TunnelError) {
        guard resources[resource] != nil else { return try answer(pending, with: nil, now: now) }
        guard let gateway = gateways.gateway(for: resource), let peer = gateways.peers[gateway] else {
            requestFlow(for: resource, holding: query, now: now)
            if query == nil { try answer(pending, with: nil, now: now) }
            return
        }
        let server: IpAddress = pending.sentinel.version == .v4 ? .v4(peer.ipv4) : .v6(peer.ipv6)
        try queryThroughTunnel(pending, server: SocketAddress(ip: server, port: Self.gatewayDnsPort), overTcp: query == nil, now: now)
    }

    /// Sends the query from our TUN address of the server's family, over the transport it came in on, as
    /// ordinary traffic, which may raise a connection intent. A query that cannot even be sent is answered with
    /// SERVFAIL at once.
    private func queryThroughTunnel(
        _ pending: ClientDns.PendingQuery, server: SocketAddress, overTcp: Bool, now: Instant
    ) throws(TunnelError) {
        guard let config = tunConfig else { return try answer(pending, with: nil, now: now) }
        let local: IpAddress = server.ip.version == .v4 ? .v4(config.ipv4) : .v6(config.ipv6)
        if overTcp {
            dns.tcpClient.send(pending.query, asker: pending, from: local, to: server, now: now)
            drainTcpDnsClient(now: now)
            return
        }
        guard let packet = dns.udpClient.packet(for: pending, from: local, to: server, now: now) else {
            return try answer(pending, with: nil, now: now)
        }
        resend(packet, now: now)
    }
}
