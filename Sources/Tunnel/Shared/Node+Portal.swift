import P2pControl
import PortalMessages
import SansIO
import Turn

/// What the client and the gateway both ask of their node in the portal's terms: relays from `init` and
/// `relays_presence`, and connections closed with a Goodbye.
extension Node {
    /// `init`'s relays become the node's: relays it no longer lists go, the listed ones are added or refreshed.
    func replaceRelays(with relays: [Relay], now: Instant) {
        let listed = Set(relays.map(\.id.description))
        let stale = allocations.entries.map(\.id).filter { !listed.contains($0) }
        updateRelays(removing: stale, adding: RelayDescription.descriptions(of: relays), now: now)
    }

    func applyRelaysPresence(_ presence: RelaysPresence, now: Instant) {
        updateRelays(removing: presence.disconnectedIds.map(\.description), adding: RelayDescription.descriptions(of: presence.connected),
                     now: now)
    }

    /// Closes a connection, with a Goodbye when its session can still carry one (spec `tunnel-dns.md` §3.3).
    func closeSayingGoodbye(_ peer: PeerId, now: Instant) {
        guard let goodbye = Goodbye.packet else { return removeConnection(peer, now: now) }
        goodbye.withUnsafeBytes { closeConnection(peer, goodbye: $0, now: now) }
    }

    /// Closes every connection, each with a Goodbye where it can.
    func closeAllSayingGoodbye(now: Instant) {
        for peer in peerIds { closeSayingGoodbye(peer, now: now) }
    }

    /// The process is going away: every connection gets its Goodbye and every allocation is deleted on its relay
    /// (REFRESH with LIFETIME 0). Otherwise a relay such as coturn keeps the allocation for its lifetime, and the
    /// next process on the same listen port (52625) cannot allocate there with its new credentials (441).
    func shutDown(now: Instant) {
        closeAllSayingGoodbye(now: now)
        for (id, allocation) in allocations.entries where allocation.isAllocated {
            allocation.deallocate(now: now)
            report(.debug, "Freeing allocation", ["rid": id])
        }
    }
}

extension RelayDescription {
    /// The portal lists a relay once per address; the node wants one entry per relay with both families.
    static func descriptions(of relays: [Relay]) -> [RelayDescription] {
        var byId: [String: RelayDescription] = [:]
        var order: [String] = []
        for case .turn(let relay) in relays {
            let id = relay.id.description
            var description = byId[id] ?? RelayDescription(
                id: id, server: RelayServer(),
                credentials: TurnCredentials(username: relay.username, password: relay.password, realm: "firezone"))
            if relay.address.ip.version == .v4 { description.server.ipv4 = relay.address } else { description.server.ipv6 = relay.address }
            if byId[id] == nil { order.append(id) }
            byId[id] = description
        }
        return order.compactMap { byId[$0] }
    }
}

/// The p2p control Goodbye's bytes, built once.
enum Goodbye {
    static let packet: [UInt8]? = try? P2pControlEvent.goodbye.packet().bytes
}
