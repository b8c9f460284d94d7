import Dns
import DnsNat
import IpPacket
import SansIO

/// The client's DNS apart from routing (spec `tunnel-dns.md` §4.6): the resolver behind the sentinels (stub
/// resolver, cache, sentinel mapping), the system's resolvers, the TCP DNS server on the sentinels with the
/// askers waiting on it, and the UDP and TCP clients that carry queries through the tunnel.
struct ClientDnsState {
    var resolver: ClientDns
    /// The OS's resolvers, the upstreams behind the sentinels when the portal configures none (spec §4.6.1).
    var systemResolvers: [IpAddress] = []
    var udpClient: InTunnelDnsClient
    var tcpServer: TcpDnsServer
    var tcpClient: TcpDnsClient<ClientDns.PendingQuery>
    /// Queries that came in over TCP and wait for a recursion, with the connection to answer on.
    private var tcpAskers: [(pending: ClientDns.PendingQuery, connection: TcpConnectionId)] = []

    /// The oldest TCP asker is forgotten beyond this, so an app that never answers its recursions cannot grow
    /// the list without bound (the asker's connection times out anyway).
    static var maxTcpAskers: Int { 1_024 }

    init(proxyIpRecords: [ProxyIpRecord], random: inout some RandomNumberGenerator) {
        resolver = ClientDns(stub: StubResolver(restoring: proxyIpRecords.map { ($0.domain, $0.ips) }))
        udpClient = InTunnelDnsClient(random: SplitMix64(seed: random.next()))
        tcpServer = TcpDnsServer(random: SplitMix64(seed: random.next()))
        tcpClient = TcpDnsClient(random: SplitMix64(seed: random.next()))
    }

    var proxyIpRecords: [ProxyIpRecord] {
        resolver.stub.allocator.exported().map { ProxyIpRecord(domain: $0.domain, ips: $0.ips) }
    }

    var knownDomainCount: Int { resolver.stub.allocator.records.count }

    /// Remembers that `pending` came in over TCP on `connection`.
    mutating func rememberTcpAsker(_ pending: ClientDns.PendingQuery, on connection: TcpConnectionId) {
        if tcpAskers.count >= Self.maxTcpAskers { tcpAskers.removeFirst() }
        tcpAskers.append((pending, connection))
    }

    /// Answers the asker on the transport its query came in on: a TCP asker on its connection (nothing
    /// returned), a UDP one with the packet for the TUN device.
    mutating func answer(_ pending: ClientDns.PendingQuery, with response: DnsMessage?, now: Instant) throws(IpPacketError) -> IpPacket? {
        if let index = tcpAskers.firstIndex(where: { $0.pending == pending }) {
            let connection = tcpAskers.remove(at: index).connection
            tcpServer.respond(resolver.answerMessage(pending, response: response, now: now), to: connection, now: now)
            return nil
        }
        return try resolver.answer(pending, response: response, now: now)
    }

    func pollTimeout() -> Instant? {
        udpClient.nextDeadline.earliest(tcpServer.pollTimeout()).earliest(tcpClient.pollTimeout())
    }

    /// Advances the TCP timers; returns the in-tunnel UDP queries whose time is up.
    mutating func handleTimeout(now: Instant) -> [ClientDns.PendingQuery] {
        tcpServer.handleTimeout(now: now)
        tcpClient.handleTimeout(now: now)
        return udpClient.expire(now: now)
    }

    /// Drops the in-tunnel connections (reset, roaming); returns the UDP queries that thereby failed.
    mutating func resetTunnelClients() -> [ClientDns.PendingQuery] {
        tcpClient.reset()
        return udpClient.reset()
    }
}
