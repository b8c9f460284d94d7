import Dns
import IpPacket

/// The Gateway's DNS-resource NAT for one Client (spec `tunnel-dns.md` §5.6.5): packets the Client sends to a
/// proxy IP leave towards the real IP, with the Client's port kept where it is free; replies come back from
/// the proxy IP. The mapping is a bijection between inside (Client port, proxy IP) and outside (port, real
/// IP) keys. Sessions expire on the idle, unconfirmed, FIN and RST rules; call ``expire(now:)`` every second.
public struct GatewayNatTable: Sendable {
    /// The Client's side of a session: its port (or echo identifier) and the proxy IP it addressed.
    public struct Inside: Hashable, Sendable {
        public var key: TransportKey
        public var proxyIp: IpAddress

        public init(key: TransportKey, proxyIp: IpAddress) {
            self.key = key
            self.proxyIp = proxyIp
        }
    }

    /// The Internet's side of a session: our port (or echo identifier) and the real IP.
    public struct Outside: Hashable, Sendable {
        public var key: TransportKey
        public var realIp: IpAddress

        public init(key: TransportKey, realIp: IpAddress) {
            self.key = key
            self.realIp = realIp
        }
    }

    /// What happened to an inbound packet.
    public enum Inbound: Hashable, Sendable {
        /// Rewritten back to the proxy IP and the Client's port.
        case translated
        /// Not DNS-resource traffic: pass it on unchanged.
        case noSession
        /// It belongs to a session that expired: drop it.
        case expiredSession
    }

    /// Idle timeouts: TCP after RFC 5382's 2 h 4 min (Firezone HEAD), UDP and ICMP echo after 2 min.
    public static let tcpIdleTimeout = Duration.seconds(2 * 3600 + 4 * 60)
    public static let udpIdleTimeout = Duration.seconds(120)
    public static let icmpIdleTimeout = Duration.seconds(120)
    /// A session that never saw a reply ends this long after its last outgoing packet.
    public static let unconfirmedTimeout = Duration.seconds(60)
    /// A TCP session that saw FIN both ways ends this long after its last packet.
    public static let finTimeout = Duration.seconds(5)

    private var sessions: [Inside: NatSession] = [:]
    private var insideByOutside: [Outside: Inside] = [:]
    /// Outside keys of expired sessions, remembered until reused so their late packets are dropped.
    private var expiredOutside: Set<Outside> = []

    public init() {}

    /// Live sessions.
    public var count: Int { sessions.count }

    /// The outside key of a live session.
    public func outside(of inside: Inside) -> Outside? {
        sessions[inside]?.outside
    }

    /// Rewrites a Client packet addressed to a proxy IP so it goes to `realIp`. An open session keeps its
    /// real IP even when the domain has since resolved elsewhere; new flows use `realIp`.
    public mutating func translateOutbound(_ packet: inout IpPacket, to realIp: IpAddress, now: Instant) throws(IpPacketError) {
        let inside = Inside(key: try packet.sourceKey, proxyIp: packet.destination)
        let flags = packet.tcp?.flags ?? []
        let outside: Outside
        if var session = sessions[inside] {
            session.lastOutgoing = now
            session.note(flags, outgoing: true)
            sessions[inside] = session
            outside = session.outside
        } else {
            outside = freeOutside(for: inside.key, realIp: realIp)
            var session = NatSession(outside: outside, lastOutgoing: now)
            session.note(flags, outgoing: true)
            sessions[inside] = session
            insideByOutside[outside] = inside
            expiredOutside.remove(outside)
        }
        try packet.setDestination(outside.realIp)
        if outside.key.value != inside.key.value { packet.setSourceKey(outside.key.value) }
    }

    /// Rewrites a packet from the Internet back to the proxy IP and the Client's port, if it belongs to a session.
    /// An ICMP error about a session's packet comes from the proxy IP instead, TTL 20, quoting the packet as the
    /// Client sent it. Throws for packets without a TCP/UDP/echo tuple that are not a supported ICMP error.
    public mutating func translateInbound(_ packet: inout IpPacket, now: Instant) throws(IpPacketError) -> Inbound {
        if let error = try packet.icmpError() { return try translateIcmpError(&packet, error.failedPacket) }
        let outside = Outside(key: try packet.destinationKey, realIp: packet.source)
        guard let inside = insideByOutside[outside], var session = sessions[inside] else {
            return expiredOutside.contains(outside) ? .expiredSession : .noSession
        }
        session.lastIncoming = now
        session.note(packet.tcp?.flags ?? [], outgoing: false)
        sessions[inside] = session
        try packet.setSource(inside.proxyIp)
        if outside.key.value != inside.key.value { packet.setDestinationKey(inside.key.value) }
        return .translated
    }

    private func translateIcmpError(_ packet: inout IpPacket, _ failed: FailedPacket) throws(IpPacketError) -> Inbound {
        let outside = Outside(key: failed.sourceKey, realIp: failed.destination)
        guard let inside = insideByOutside[outside] else {
            return expiredOutside.contains(outside) ? .expiredSession : .noSession
        }
        try packet.translateFailedPacket(destination: inside.proxyIp, sourceKeyValue: inside.key.value)
        try packet.setSource(inside.proxyIp)
        try packet.setDestination(failed.source)
        packet.setTtl(20)
        return .translated
    }

    /// Removes every session past its deadline.
    public mutating func expire(now: Instant) {
        for (inside, session) in sessions where session.deadline(for: inside.key) <= now {
            sessions[inside] = nil
            insideByOutside[session.outside] = nil
            expiredOutside.insert(session.outside)
        }
    }

    /// Forgets the sessions to these proxy IPs (the Client re-numbered them); their late replies are dropped.
    public mutating func removeSessions(to proxies: Set<IpAddress>) {
        for (inside, session) in sessions where proxies.contains(inside.proxyIp) {
            sessions[inside] = nil
            insideByOutside[session.outside] = nil
            expiredOutside.insert(session.outside)
        }
    }

    /// The Client's own port if free, else the next free one: p, p+1, …, 65535, 1, …, p−1.
    private func freeOutside(for key: TransportKey, realIp: IpAddress) -> Outside {
        let start = key.value
        var candidate = start
        repeat {
            let outside = Outside(key: key.with(value: candidate), realIp: realIp)
            if insideByOutside[outside] == nil { return outside }
            candidate = candidate == .max ? 1 : candidate + 1
        } while candidate != start
        // All 65535 taken for this real IP: share the Client's port rather than drop (never reached in practice).
        return Outside(key: key, realIp: realIp)
    }
}

struct NatSession: Sendable {
    var outside: GatewayNatTable.Outside
    var lastOutgoing: Instant
    var lastIncoming: Instant?
    var finOut = false
    var finIn = false
    var reset = false

    mutating func note(_ flags: TcpFlags, outgoing: Bool) {
        if flags.contains(.rst) { reset = true }
        guard flags.contains(.fin) else { return }
        if outgoing { finOut = true } else { finIn = true }
    }

    func deadline(for key: TransportKey) -> Instant {
        let lastPacket = max(lastOutgoing, lastIncoming ?? lastOutgoing)
        if reset { return lastPacket }
        let idle: Duration = switch key {
        case .tcp: GatewayNatTable.tcpIdleTimeout
        case .udp: GatewayNatTable.udpIdleTimeout
        case .icmpEcho: GatewayNatTable.icmpIdleTimeout
        }
        var deadline = lastPacket + idle
        if lastIncoming == nil { deadline = min(deadline, lastOutgoing + GatewayNatTable.unconfirmedTimeout) }
        if finOut && finIn { deadline = min(deadline, lastPacket + GatewayNatTable.finTimeout) }
        return deadline
    }
}

extension TransportKey {
    func with(value: UInt16) -> TransportKey {
        switch self {
        case .tcp: .tcp(value)
        case .udp: .udp(value)
        case .icmpEcho: .icmpEcho(identifier: value)
        }
    }
}
