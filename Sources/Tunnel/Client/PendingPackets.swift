import DnsNat
import IpPacket
import SansIO

/// Where the client's packets wait while a connection is set up (spec `tunnel-dns.md` §4.4.4), and nowhere
/// else: behind a resource's flow request until the portal answers with `flow_created`, then behind the
/// gateway's connection until its first WireGuard session. Neither the node nor WireGuard holds a packet on
/// the way. Each wait keeps up to 128 packets (a duplicate is not added, the oldest is overwritten); a flow
/// request goes out at most every 2 s, and only when something asks for it. Firezone's
/// `pending_authorizations` and pending-connection buffers.
struct PendingPackets {
    enum Wait: Hashable {
        /// For the portal's `flow_created` for this resource.
        case flow(ResourceId)
        /// For the first WireGuard session with this gateway.
        case connection(GatewayId)
    }

    static var capacity: Int { 128 }
    static var flowRequestInterval: Duration { .seconds(2) }

    private var waits: [Wait: UniquePacketRing] = [:]
    private var lastFlowRequest: [ResourceId: Instant] = [:]

    /// Whether the client asked the portal for a flow to `resource` and got no answer yet.
    func awaitsFlow(_ resource: ResourceId) -> Bool {
        lastFlowRequest[resource] != nil
    }

    /// Keeps `packet` until `wait` ends; returns `false` when that overwrote the oldest one.
    mutating func hold(_ packet: IpPacket, until wait: Wait) -> Bool {
        var ring = waits[wait] ?? UniquePacketRing(capacity: Self.capacity)
        let dropped = ring.droppedCount
        ring.append(packet)
        waits[wait] = ring
        return ring.droppedCount == dropped
    }

    /// Whether a flow request for `resource` is due at `now`; if so it counts as sent.
    mutating func flowRequestDue(for resource: ResourceId, now: Instant) -> Bool {
        if let last = lastFlowRequest[resource], now - last < Self.flowRequestInterval { return false }
        lastFlowRequest[resource] = now
        return true
    }

    /// Ends a wait: its packets, oldest first.
    mutating func release(_ wait: Wait) -> [IpPacket] {
        if case .flow(let resource) = wait { lastFlowRequest[resource] = nil }
        var ring = waits.removeValue(forKey: wait)
        return ring?.drain() ?? []
    }

    /// Drops a wait and its packets.
    mutating func discard(_ wait: Wait) {
        _ = release(wait)
    }

    mutating func discardAll() {
        waits.removeAll()
        lastFlowRequest.removeAll()
    }
}
