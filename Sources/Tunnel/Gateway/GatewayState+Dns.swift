import Dns
import DnsNat
import IpPacket
import PortalMessages
import SansIO

extension GatewayState {
    /// The port of the DNS server on the gateway's TUN addresses (spec §5.9).
    public static let tunDnsPort: UInt16 = 53_535
    /// UDP answers longer than this are truncated (TC set, records dropped).
    static let udpDnsAnswerLimit = 1_200

    /// Answers a query handed out with ``GatewayEvent/forwardDns(_:)``: the nameserver's response with the
    /// query's ID, or SERVFAIL when there was none (`nil`), on the transport the query came in on.
    public func dnsAnswered(_ query: GatewayDnsQuery, response: DnsMessage?, now: Instant) {
        var answer = response ?? DnsMessage.response(to: query.query, rcode: .serverFailure)
        answer.id = query.query.id
        if query.overTcp {
            tcpDns.respond(answer, to: TcpConnectionId(local: query.server, remote: query.asker), now: now)
            flushTcpDns(now: now)
            return
        }
        guard let packet = try? IpPacket.udp(source: query.server.ip, destination: query.asker.ip, sourcePort: query.server.port,
                                             destinationPort: query.asker.port, payload: answer.encode(maxSize: Self.udpDnsAnswerLimit))
        else { return }
        send(packet, to: query.client, now: now)
    }

    /// A client's packet to `TUN IP:53535`: UDP queries and TCP segments are served here, never written to the
    /// TUN device. `false` for anything else.
    func serveTunDns(_ packet: IpPacket, from client: ClientOnGateway, now: Instant) -> Bool {
        guard isOwnAddress(packet.destination) else { return false }
        if let udp = packet.udp, udp.destinationPort == Self.tunDnsPort {
            guard case .success(let query) = ClientDns.validatedQuery(packet, port: Self.tunDnsPort) else {
                statistics.count(.badDnsQuery)
                return true
            }
            events.append(.forwardDns(GatewayDnsQuery(
                client: client.id, query: query, asker: SocketAddress(ip: packet.source, port: udp.sourcePort),
                server: SocketAddress(ip: packet.destination, port: udp.destinationPort), overTcp: false)))
            return true
        }
        guard packet.tcp?.destinationPort == Self.tunDnsPort else { return false }
        tcpDns.handle(packet, now: now)
        while let query = tcpDns.pollQuery() {
            events.append(.forwardDns(GatewayDnsQuery(client: client.id, query: query.message, asker: query.connection.remote,
                                                      server: query.connection.local, overTcp: true)))
        }
        flushTcpDns(now: now)
        return true
    }

    /// Sends the TCP DNS server's segments to the clients they are for.
    func flushTcpDns(now: Instant) {
        while let packet = tcpDns.pollPacket() {
            guard let client = clientByTunnelIp[packet.destination] else { continue }
            send(packet, to: client, now: now)
        }
    }
}
