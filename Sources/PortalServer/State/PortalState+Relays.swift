import Logging
import PortalInput
import PortalMessages
import SansIO

/// A relay connected to the portal's relay socket.
struct RelaySession: Sendable {
    var id: RelayId
    var request: RelayConnectRequest
    /// The stamp secret it joined with: every TURN credential for it is derived from this.
    var secret: String
    var outbox: Outbox
}

/// A relay that left; clients and gateways hear of it when ``PortalState/relayLeaveDebounce`` passes without it
/// coming back.
struct LeavingRelay: Sendable {
    var addresses: [SocketAddress]
    /// Which leave this is, so the timer of an earlier one does not end a later one early.
    var generation: UInt64
}

extension PortalState {
    /// A relay joined topic `relay` with its stamp secret (Firezone's `PortalAPI.Relay.Channel`): `init` to it,
    /// an older connection with the same id closed, and `relays_presence` to every client and gateway. A relay
    /// that left from the same addresses with another secret (it restarted) is reported disconnected at once.
    public func relayJoined(_ request: RelayConnectRequest, join: RelayJoin, outbox: Outbox) {
        guard config.relayTokens.contains(request.token) else { return }
        let id = Credentials.relayId(stampSecret: join.stampSecret)
        if let old = joinedRelays[id], old.outbox !== outbox { old.outbox.finish() }
        for relay in joinedRelays.values where relay.outbox === outbox && relay.id != id { joinedRelays[relay.id] = nil }
        let returning = leavingRelays.removeValue(forKey: id) != nil
        let replaced = leavingRelays.filter { $0.value.addresses == request.addresses }.map(\.key).sorted()
        for old in replaced { leavingRelays[old] = nil }
        joinedRelays[id] = RelaySession(id: id, request: request, secret: join.stampSecret, outbox: outbox)
        outbox.push(topic: "relay", event: "init", payload: RelayIngress.initialize.payload)
        logger.info(returning ? "Relay reconnected" : "Relay joined", metadata: [
            "relay": "\(id)", "name": "\(request.name ?? "-")", "addresses": "\(request.addresses.map(\.description).joined(separator: " "))",
            "version": "\(request.version ?? "unknown")",
        ])
        broadcastRelays(disconnected: replaced)
    }

    /// The relay's connection ended: it is no longer offered, and after the debounce everyone hears it left.
    func relayLeft(_ relay: RelaySession) {
        joinedRelays[relay.id] = nil
        relayLeaveGeneration &+= 1
        let generation = relayLeaveGeneration
        leavingRelays[relay.id] = LeavingRelay(addresses: relay.request.addresses, generation: generation)
        logger.info("Relay left", metadata: ["relay": "\(relay.id)", "name": "\(relay.request.name ?? "-")"])
        let delay = relayLeaveDebounce
        Task { [weak self] in
            try? await Task.sleep(for: delay)
            await self?.relayLeaveSettled(relay.id, generation: generation)
        }
    }

    private func relayLeaveSettled(_ id: RelayId, generation: UInt64) {
        guard leavingRelays[id]?.generation == generation else { return }
        leavingRelays[id] = nil
        logger.info("Relay gone", metadata: ["relay": "\(id)"])
        broadcastRelays(disconnected: [id])
    }
}
