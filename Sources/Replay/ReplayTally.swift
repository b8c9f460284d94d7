/// Packets and bytes.
public struct Tally: Codable, Hashable, Sendable {
    public var packets = 0
    public var bytes = 0

    public init(packets: Int = 0, bytes: Int = 0) {
        self.packets = packets
        self.bytes = bytes
    }

    mutating func add(bytes count: Int) {
        packets += 1
        bytes += count
    }
}

/// What happened to a packet the client sent towards a resource.
public enum ClientVerdict: String, Codable, CaseIterable, Sendable {
    /// The gateway wrote it to its TUN device unchanged: a CIDR or Internet resource.
    case routed
    /// The gateway wrote it to its TUN device after DNS-resource NAT (proxy IP → the domain's address).
    case natTranslated = "nat-translated"
    /// A DNS query to a sentinel, handled by the client's stub resolver (answered, or recursed upstream).
    case stubResolver = "stub-resolver"
    /// Refused by the gateway's filters and answered with ICMP "prohibited".
    case filtered
    /// Not for the tunnel: no route covers the destination, so the OS would not send it into the TUN device.
    case notAResource = "not-a-resource"
    /// Dropped by the client (reason in ``TunnelReport/clientDrops``).
    case droppedByClient = "dropped-by-client"
    /// Dropped by the gateway without an answer (reason in ``TunnelReport/gatewayDrops``).
    case droppedByGateway = "dropped-by-gateway"
    /// Sent or buffered and still on its way when the capture (plus the drain time) ended.
    case unaccounted
}

/// What happened to a packet a resource sent towards the client.
public enum ResourceVerdict: String, Codable, CaseIterable, Sendable {
    /// Through the gateway's reverse NAT and filters, encrypted, and written to the client's TUN device.
    case delivered
    /// A DNS answer from a sentinel address: the stub resolver answers in its place; the replay uses the
    /// captured answer for recursions and for the gateway's resolution of DNS resources.
    case dnsAnswerUsed = "dns-answer-used"
    /// The request it answers never left the gateway (filtered, dropped, or not a resource), so the resource
    /// would not have sent it.
    case noRequest = "no-request"
    /// Dropped by the gateway (reason in ``TunnelReport/gatewayDrops``).
    case droppedByGateway = "dropped-by-gateway"
    /// Injected, and still on its way when the replay ended.
    case unaccounted
}
