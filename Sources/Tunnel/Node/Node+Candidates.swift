import Ice
import SansIO
import Turn

extension Node {
    /// Offers a connection every host and server-reflexive candidate of all relays and the relay candidates
    /// of its own relay (spec §1.5); each new one is signalled, highest priority first.
    func seedLocalCandidates(_ connection: Connection<PeerId>) {
        var added: [IceCandidate] = []
        for (id, allocation) in allocations.entries {
            added += addHostAndReflexive(of: allocation, to: connection)
            if id == connection.relay { added += addRelayCandidates(of: allocation, to: connection) }
        }
        for candidate in added.sorted(by: { $0.priority > $1.priority }) { signalLocal(candidate, to: connection.peer) }
    }

    /// Queues a local candidate for the peer, with a DEBUG line.
    func signalLocal(_ candidate: IceCandidate, to peer: PeerId) {
        report(.debug, "Signalling local candidate", peer, ["candidate": "\(candidate.kind.rawValue) \(candidate.address)"])
        events.append(.newIceCandidate(peer: peer, candidate: candidate))
    }

    func addHostAndReflexive(of allocation: TurnAllocation, to connection: Connection<PeerId>) -> [IceCandidate] {
        var added: [IceCandidate] = []
        for host in allocation.hostAddresses {
            if let candidate = connection.agent.addLocalCandidate(kind: .host, address: host) { added.append(candidate) }
        }
        for reflexive in allocation.serverReflexiveAddresses {
            let base = allocation.hostAddresses.first { $0.ip.version == reflexive.ip.version } ?? reflexive
            if let candidate = connection.agent.addLocalCandidate(kind: .serverReflexive, address: reflexive, base: base) {
                added.append(candidate)
            }
        }
        return added
    }

    func addRelayCandidates(of allocation: TurnAllocation, to connection: Connection<PeerId>) -> [IceCandidate] {
        allocation.relayAddresses.compactMap {
            connection.agent.addLocalCandidate(kind: .relayed, address: $0, relayBase: allocation.activeSocket)
        }
    }

    /// Removes an allocation's relay candidates from every agent and tells the peers (spec §2.9).
    func invalidateRelayCandidates(of allocation: TurnAllocation) {
        for address in allocation.relayAddresses { invalidateLocalCandidate(address) }
    }

    func invalidateLocalCandidate(_ address: SocketAddress) {
        for connection in connections.values {
            guard let candidate = connection.agent.localCandidates.first(where: { $0.address == address }) else { continue }
            connection.agent.invalidateLocalCandidate(address: address)
            events.append(.invalidateIceCandidate(peer: connection.peer, candidate: candidate))
        }
    }

    /// Turns an allocation's events into candidates: host and server-reflexive ones for every connection,
    /// relay ones for the connections using that relay (spec §1.3 step 2).
    func drainAllocation(id: String, _ allocation: TurnAllocation, now: Instant) {
        while let event = allocation.pollEvent() {
            switch event {
            case .hostCandidate, .serverReflexiveCandidate:
                for connection in connections.values {
                    signal(addHostAndReflexive(of: allocation, to: connection), for: connection, now: now)
                }
            case .relayCandidate:
                for connection in connections.values where connection.relay == id {
                    signal(addRelayCandidates(of: allocation, to: connection), for: connection, now: now)
                }
            case .relayCandidateInvalidated(let address):
                invalidateLocalCandidate(address)
            case .allocated(let lifetime):
                report(.info, "Allocated on relay", ["rid": id, "relayed": allocation.relayAddresses.map(\.description).joined(separator: ", "),
                                                     "lifetime": "\(lifetime)", "transport": "\(allocation.server.transport)"])
            case .refreshed(let lifetime):
                report(.debug, "Refreshed allocation", ["rid": id, "lifetime": "\(lifetime)"])
            case let .channelBound(peer, channel):
                report(.debug, "Bound channel", ["rid": id, "peer": "\(peer)", "channel": "0x" + String(channel, radix: 16)])
            case .probing(let reason):
                report(.info, "Checking whether the relay still holds our allocation", ["rid": id, "reason": "\(reason)"])
            case .allocationMissing:
                report(.info, "Relay no longer has our allocation; allocating again", ["rid": id])
            case .failed:
                break  // reported when the relay is replaced (replaceLostRelays)
            }
        }
    }

    private func signal(_ candidates: [IceCandidate], for connection: Connection<PeerId>, now: Instant) {
        guard !candidates.isEmpty else { return }
        connection.markActivity(now: now)
        for candidate in candidates { signalLocal(candidate, to: connection.peer) }
    }

    /// Frees allocations that gave up and moves connections whose relay is gone to another one, signalling
    /// its relay candidates (spec §3.8, §3.10). Without any relay it tries again on the next tick.
    func replaceLostRelays(now: Instant) {
        let failed = allocations.entries.filter { $0.allocation.failureReason != nil }
        for (id, allocation) in failed where !fallBack(id: id, from: allocation, now: now) {
            relayFallbacks[id] = nil
            report(.info, "Disconnecting from relay", ["rid": id, "reason": allocation.failureReason.map { "\($0)" } ?? ""])
            invalidateRelayCandidates(of: allocation)
        }
        allocations.removeFailed()
        for connection in connections.values {
            guard connection.relay.map({ allocations.allocation(id: $0) == nil }) ?? true else { continue }
            let old = connection.relay
            connection.relay = sampleRelay()
            guard let relay = connection.relay, let allocation = allocations.allocation(id: relay) else { continue }
            report(.info, "Migrating connection to new relay", connection.peer, ["old": old ?? "none", "new": relay])
            signal(addRelayCandidates(of: allocation, to: connection), for: connection, now: now)
            connection.markActivity(now: now)
        }
    }
}
