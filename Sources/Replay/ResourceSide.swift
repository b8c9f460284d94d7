import IpPacket
import SansIO

/// The resources behind the gateway, played by the capture: a captured reply goes into the gateway's TUN
/// device only once the request it answers has come out of it, since a resource answers only what it
/// received. Replies whose request has not come out yet wait, in order.
struct ResourceSide {
    private var flowsOut: Set<FlowKey> = []
    private var waiting: [FlowKey: [(number: Int, packet: IpPacket)]] = [:]
    private(set) var waitingCount = 0
    /// At most this many replies wait; beyond it the oldest flow's are given up (counted as without request).
    let capacity = 65_536

    /// A packet the gateway wrote to its TUN device. Returns the replies that waited for it.
    mutating func requestLeftGateway(_ packet: IpPacket) -> [(number: Int, packet: IpPacket)] {
        let key = FlowKey(request: packet)
        flowsOut.insert(key)
        guard let released = waiting.removeValue(forKey: key) else { return [] }
        waitingCount -= released.count
        return released
    }

    /// Whether a reply can go into the gateway now; if not, it waits (and `false` is returned).
    /// Returns the replies given up to make room, if any.
    mutating func admit(_ reply: IpPacket, number: Int) -> (ready: Bool, givenUp: [IpPacket]) {
        let key = FlowKey(reply: reply)
        if flowsOut.contains(key) { return (true, []) }
        waiting[key, default: []].append((number, reply))
        waitingCount += 1
        var givenUp: [IpPacket] = []
        while waitingCount > capacity, let oldest = waiting.min(by: { $0.value[0].number < $1.value[0].number }) {
            waiting[oldest.key] = nil
            waitingCount -= oldest.value.count
            givenUp += oldest.value.map(\.packet)
        }
        return (false, givenUp)
    }

    /// Replies still waiting at the end: their requests never left the gateway.
    mutating func takeWaiting() -> [IpPacket] {
        defer { waiting = [:]; waitingCount = 0 }
        return waiting.values.flatMap { $0.map(\.packet) }
    }
}

/// A flow as the resource sees it: from the client (after the gateway's NAT) to the resource.
struct FlowKey: Hashable {
    var client: IpAddress
    var resource: IpAddress
    var clientKey: TransportKey?
    /// Ports or echo identifiers, which also name the protocol; `nil` for protocols without them.
    var resourceKey: TransportKey?

    /// The flow of a packet from the client.
    init(request packet: IpPacket) {
        client = packet.source
        resource = packet.destination
        clientKey = try? packet.sourceKey
        resourceKey = try? packet.destinationKey
    }

    /// The flow a packet from a resource answers; ICMP errors answer the flow of the packet they quote.
    init(reply packet: IpPacket) {
        if let error = try? packet.icmpError() {
            let failed = error.failedPacket
            client = failed.source
            resource = failed.destination
            clientKey = failed.sourceKey
            resourceKey = failed.destinationKey
            return
        }
        client = packet.destination
        resource = packet.source
        clientKey = try? packet.destinationKey
        resourceKey = try? packet.sourceKey
    }
}
