import Dns
import DnsNat
import IpPacket
import SansIO

/// The client's DNS client inside the tunnel (spec `tunnel-dns.md` §4.6.8, UDP): queries for SRV/TXT of a
/// DNS resource go to the gateway's `TUN IP:53535`, and queries for a portal upstream that lies inside a
/// resource go to `upstream:53`, both from our TUN address as ordinary tunnel traffic.
///
/// Each query gets a random source port in 49152–65535, unique among the pending ones. An answer is accepted
/// only from the exact server socket, to that port, with the query's ID; anything else is not ours.
struct InTunnelDnsClient {
    /// How long a query waits for its answer before it fails with SERVFAIL ([2025]: 30 s).
    static let timeout: Duration = .seconds(30)

    struct Query {
        var pending: ClientDns.PendingQuery
        var server: SocketAddress
        var deadline: Instant
    }

    private(set) var queries: [UInt16: Query] = [:]
    private var random: SplitMix64

    init(random: SplitMix64) {
        self.random = random
    }

    var isEmpty: Bool { queries.isEmpty }

    var nextDeadline: Instant? { queries.values.lazy.map(\.deadline).min() }

    /// The UDP packet that carries `pending`'s query from `local` to `server`; `nil` when every port is taken.
    mutating func packet(for pending: ClientDns.PendingQuery, from local: IpAddress, to server: SocketAddress,
                         now: Instant) -> IpPacket? {
        guard queries.count < EphemeralPort.range.count else { return nil }
        let port = EphemeralPort.pick(using: &random) { queries[$0] != nil }
        guard let packet = try? IpPacket.udp(source: local, destination: server.ip, sourcePort: port,
                                             destinationPort: server.port, payload: pending.query.encode())
        else { return nil }
        queries[port] = Query(pending: pending, server: server, deadline: now + Self.timeout)
        return packet
    }

    /// The pending query `packet` answers, and the answer; `nil` when the packet is not an answer to us.
    mutating func answer(in packet: IpPacket) -> (ClientDns.PendingQuery, DnsMessage)? {
        guard let udp = packet.udp, let query = queries[udp.destinationPort],
              query.server == SocketAddress(ip: packet.source, port: udp.sourcePort),
              let response = try? DnsMessage(decoding: packet.bytes(in: udp.payloadRange)),
              response.flags.isResponse, response.id == query.pending.query.id
        else { return nil }
        queries[udp.destinationPort] = nil
        return (query.pending, response)
    }

    /// Removes and returns the queries whose time is up.
    mutating func expire(now: Instant) -> [ClientDns.PendingQuery] {
        let expired = queries.filter { $0.value.deadline <= now }
        for port in expired.keys { queries[port] = nil }
        return expired.values.map(\.pending)
    }

    /// Fails every pending query (reset, roaming).
    mutating func reset() -> [ClientDns.PendingQuery] {
        defer { queries.removeAll() }
        return queries.values.map(\.pending)
    }
}
