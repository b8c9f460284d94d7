import SansIO

/// The allocations of a node, one per relay id, and a memory of the last 64 relay IPs that went away, so
/// late traffic from an old relay is dropped instead of being mistaken for a peer behind a NAT that maps to
/// port 3478 (spec `snownet.md` §3.7, seed 000).
public final class Allocations {
    /// The allocations by relay id, in insertion order.
    public private(set) var entries: [(id: String, allocation: TurnAllocation)] = []
    private var recentRelayIps: [IpAddress] = []
    public static let rememberedRelayIps = 64

    public init() {}

    /// Where a datagram from `source` belongs.
    public enum Lookup {
        /// One of our relays: hand it to this allocation.
        case connected(id: String, allocation: TurnAllocation)
        /// A relay we no longer use: drop it.
        case disconnected
        /// Not a relay: treat it as peer-to-peer traffic.
        case unknown
    }

    public enum UpsertResult: Hashable, Sendable {
        case added
        /// Same server and credentials: the existing allocation stays.
        case skipped
        /// Different server or credentials: the old allocation was replaced (its IPs are remembered).
        case replaced
    }

    public func allocation(id: String) -> TurnAllocation? {
        entries.first { $0.id == id }?.allocation
    }

    public func lookup(_ source: SocketAddress) -> Lookup {
        for entry in entries where entry.allocation.server.addresses.contains(source) {
            return .connected(id: entry.id, allocation: entry.allocation)
        }
        return recentRelayIps.contains(source.ip) ? .disconnected : .unknown
    }

    @discardableResult
    public func upsert(id: String, server: RelayServer, credentials: TurnCredentials, now: Instant,
                       random: any RandomNumberGenerator = SystemRandomNumberGenerator()) -> UpsertResult {
        let fresh = TurnAllocation(server: server, credentials: credentials, now: now, random: random)
        guard let index = entries.firstIndex(where: { $0.id == id }) else {
            entries.append((id, fresh))
            return .added
        }
        let existing = entries[index].allocation
        guard existing.server != server || existing.credentials != credentials else { return .skipped }
        remember(existing)
        entries[index] = (id, fresh)
        return .replaced
    }

    /// Removes a relay; its IPs are remembered.
    public func remove(id: String) {
        guard let index = entries.firstIndex(where: { $0.id == id }) else { return }
        remember(entries[index].allocation)
        entries.remove(at: index)
    }

    /// Removes the allocations that gave up (no response, bad credentials, protocol failure); returns their ids.
    @discardableResult
    public func removeFailed() -> [String] {
        let failed = entries.filter { $0.allocation.failureReason != nil }.map(\.id)
        for id in failed { remove(id: id) }
        return failed
    }

    /// Starts every allocation over from scratch with the same server and credentials (a reset, #14301): our new
    /// socket needs a new allocation and a new nonce, but the portal's credentials outlive the reset, so relay
    /// candidates come back without waiting for the portal. A relay that frees a username's older allocation
    /// on a new ALLOCATE (Firezone's) frees the one the old socket held.
    public func restartAll(now: Instant, random: () -> any RandomNumberGenerator) {
        entries = entries.map { entry in
            (entry.id, TurnAllocation(server: entry.allocation.server, credentials: entry.allocation.credentials, now: now,
                                      random: random()))
        }
    }

    /// Forgets every allocation, remembering their IPs.
    public func removeAll() {
        for entry in entries { remember(entry.allocation) }
        entries.removeAll()
    }

    private func remember(_ allocation: TurnAllocation) {
        for address in allocation.server.addresses where !recentRelayIps.contains(address.ip) {
            recentRelayIps.append(address.ip)
        }
        if recentRelayIps.count > Self.rememberedRelayIps {
            recentRelayIps.removeFirst(recentRelayIps.count - Self.rememberedRelayIps)
        }
    }
}
