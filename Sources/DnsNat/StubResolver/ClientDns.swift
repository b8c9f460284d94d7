import Dns
import IpPacket

/// The Client's DNS front door (spec `tunnel-dns.md` §4.6.2–§4.6.3): a UDP packet to a sentinel becomes a
/// cached answer, a local answer from the stub resolver, or a query to forward; answers go back to the asker
/// as packets from `sentinel:53`, truncated to 1212 bytes. The Tunnel decides how forwarded queries travel
/// (through the tunnel when the upstream lies in a resource, else from an ordinary socket).
public struct ClientDns: Sendable {
    public var sentinels = DnsSentinels()
    public var stub: StubResolver
    public var cache = DnsCache()
    /// Passed on to the OS for name expansion; never used here (Firezone leaves expansion to the OS).
    public var searchDomain: DnsName?
    /// Queries dropped because they were not a valid single-question DNS query on port 53.
    public private(set) var rejectedCount = 0

    /// A query waiting for an upstream's or a Gateway's answer, with what is needed to answer the asker.
    public struct PendingQuery: Hashable, Sendable {
        public var query: DnsMessage
        public var asker: SocketAddress
        public var sentinel: IpAddress

        public init(query: DnsMessage, asker: SocketAddress, sentinel: IpAddress) {
            self.query = query
            self.asker = asker
            self.sentinel = sentinel
        }
    }

    public enum Action: Sendable {
        /// Write this packet to the TUN device: the answer.
        case reply(IpPacket, localDomain: DnsName?)
        /// Forward to the upstream the sentinel stands for; answer with ``answer(_:response:now:)``.
        case recurseLocally(PendingQuery, upstream: DnsUpstream)
        /// Forward to the Gateway serving this resource, port 53535.
        case recurseInSite(PendingQuery, resource: ResourceId)
        /// The destination is not a mapped sentinel: not DNS, route the packet as usual.
        case notDns
        /// Dropped: not a valid query.
        case rejected(DnsQueryRejection)
    }

    public init(stub: StubResolver = StubResolver()) {
        self.stub = stub
    }

    /// What to do with a query, whichever transport brought it.
    public enum Decision: Sendable {
        /// Answer with this message (from the cache, or locally for `localDomain`).
        case answer(DnsMessage, localDomain: DnsName?)
        case recurseLocally(PendingQuery, upstream: DnsUpstream)
        case recurseInSite(PendingQuery, resource: ResourceId)
    }

    /// Handles a UDP packet the OS sent to a sentinel. Local answers name their domain (`localDomain`) so the
    /// caller can recreate and update that domain's DNS-resource NAT.
    public mutating func handleQueryPacket(_ packet: IpPacket, now: Instant) -> Action {
        guard sentinels.upstream(for: packet.destination) != nil else { return .notDns }
        let query: DnsMessage
        switch Self.validatedQuery(packet) {
        case .success(let valid): query = valid
        case .failure(let rejection):
            rejectedCount += 1
            return .rejected(rejection)
        }
        guard let udp = packet.udp else { return .rejected(.notUdpToPort53) }
        let pending = PendingQuery(query: query, asker: SocketAddress(ip: packet.source, port: udp.sourcePort),
                                   sentinel: packet.destination)
        switch decide(pending, now: now) {
        case let .answer(answer, domain)?:
            guard let reply = try? replyPacket(answer, for: pending) else { return .rejected(.unanswerable) }
            return .reply(reply, localDomain: domain)
        case let .recurseLocally(pending, upstream)?:
            return .recurseLocally(pending, upstream: upstream)
        case let .recurseInSite(pending, resource)?:
            return .recurseInSite(pending, resource: resource)
        case nil:
            return .notDns
        }
    }

    /// The cache, then the stub resolver (spec §4.6.3) for a valid query to a sentinel; `nil` when the
    /// sentinel stands for no upstream.
    public mutating func decide(_ pending: PendingQuery, now: Instant) -> Decision? {
        guard let upstream = sentinels.upstream(for: pending.sentinel) else { return nil }
        if let cached = cache.answer(pending.query, now: now) { return .answer(cached, localDomain: nil) }
        switch stub.handle(pending.query) {
        case .localResponse(let answer):
            return .answer(answer, localDomain: pending.query.questions.first?.name)
        case .recurseLocally:
            return .recurseLocally(pending, upstream: upstream)
        case .recurseInSite(let resource):
            return .recurseInSite(pending, resource: resource)
        }
    }

    /// The packet answering a forwarded query: the upstream's response with the original ID restored
    /// (and offered to the cache), or SERVFAIL when the recursion failed (`nil`).
    public mutating func answer(_ pending: PendingQuery, response: DnsMessage?, now: Instant) throws(IpPacketError) -> IpPacket {
        try replyPacket(answerMessage(pending, response: response, now: now), for: pending)
    }

    /// The message answering a forwarded query, for any transport: see ``answer(_:response:now:)``.
    public mutating func answerMessage(_ pending: PendingQuery, response: DnsMessage?, now: Instant) -> DnsMessage {
        guard var response else { return DnsMessage.response(to: pending.query, rcode: .serverFailure) }
        response.id = pending.query.id
        cache.offer(response, for: pending.query, now: now)
        return response
    }

    /// Accepts exactly a UDP packet to `port` carrying a query (not a response) with one question.
    public static func validatedQuery(_ packet: IpPacket, port: UInt16 = 53) -> Result<DnsMessage, DnsQueryRejection> {
        guard let udp = packet.udp, udp.destinationPort == port else { return .failure(.notUdpToPort53) }
        let query: DnsMessage
        do {
            query = try DnsMessage(decoding: packet.bytes(in: udp.payloadRange))
        } catch {
            return .failure(.undecodable(error))
        }
        guard !query.flags.isResponse else { return .failure(.notAQuery) }
        guard query.questions.count == 1 else { return .failure(.questionCount(query.questions.count)) }
        return .success(query)
    }

    private func replyPacket(_ message: DnsMessage, for pending: PendingQuery) throws(IpPacketError) -> IpPacket {
        try IpPacket.udp(source: pending.sentinel, destination: pending.asker.ip, sourcePort: 53, destinationPort: pending.asker.port,
                         payload: message.encode(maxSize: DnsMessage.maxUdpResponseSize))
    }
}

/// Why a packet to a sentinel was not handled as a DNS query.
public enum DnsQueryRejection: Error, Hashable, Sendable, CustomStringConvertible {
    case notUdpToPort53
    case undecodable(DnsError)
    case notAQuery
    case questionCount(Int)
    case unanswerable

    public var description: String {
        switch self {
        case .notUdpToPort53: "not UDP to the DNS port"
        case .undecodable(let error): "undecodable DNS message: \(error)"
        case .notAQuery: "a DNS response, not a query"
        case .questionCount(let count): "\(count) questions, expected exactly 1"
        case .unanswerable: "the answer does not fit a packet"
        }
    }
}
