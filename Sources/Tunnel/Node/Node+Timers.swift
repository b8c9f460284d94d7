import Ice
import Noise
import SansIO

extension Node {
    /// Advances every timer (spec §1.3): allocations, then each connection's ICE agent, idle and failure
    /// deadlines and WireGuard timers, then relay replacement and the removal of failed connections.
    public func handleTimeout(now: Instant) {
        for (id, allocation) in allocations.entries {
            allocation.handleTimeout(now: now)
            drainAllocation(id: id, allocation, now: now)
        }
        for connection in connections.values {
            connection.agent.handleTimeout(now: now)
            drainAgent(connection, now: now)
            connection.checkDeadlines(now: now)
            if connection.socket != nil, !connection.isFailed {
                let initiations = connection.tunnel.statistics.handshakeInitiationsSent
                connection.tunnel.handleTimeout(now: now)
                if connection.tunnel.statistics.handshakeInitiationsSent > initiations {
                    report(.debug, "WireGuard timer: sending a handshake initiation", connection.peer,
                           ["initiations": "\(connection.tunnel.statistics.handshakeInitiationsSent)"])
                }
                drainTunnel(connection, now: now)
            }
        }
        replaceLostRelays(now: now)
        probeUdp(now: now)
        removeFailedConnections(now: now)
        recentlyClosed.removeAll { now - $0.at >= Self.recentlyClosedMemory }
    }

    /// When ``handleTimeout(now:)`` should run next.
    public func pollTimeout() -> Instant? {
        var earliest: Instant?
        func consider(_ deadline: Instant?) {
            guard let deadline else { return }
            earliest = min(earliest ?? deadline, deadline)
        }
        for (_, allocation) in allocations.entries { consider(allocation.pollTimeout()) }
        for connection in connections.values {
            consider(connection.nextDeadline())
            consider(connection.agent.pollTimeout())
            if connection.socket != nil { consider(connection.tunnel.pollTimeout()) }
        }
        if let oldest = recentlyClosed.first { consider(oldest.at + Self.recentlyClosedMemory) }
        consider(nextUdpProbe)
        return earliest
    }

    // MARK: Draining sub-components

    /// Acts on the agent's events (nomination, state) and queues its checks.
    func drainAgent(_ connection: Connection<PeerId>, now: Instant) {
        while let event = connection.agent.pollEvent() {
            switch event {
            case let .nominated(source, destination):
                guard let socket = peerSocket(source: source, destination: destination, agent: connection.agent)
                else { continue }
                nominate(socket, for: connection, now: now)
            case .stateChanged(let state):
                report(.debug, "ICE state changed", connection.peer, ["state": "\(state)"])
                if state == .disconnected {
                    connection.disconnectedSince = connection.disconnectedSince ?? now
                } else {
                    connection.disconnectedSince = nil
                }
            case .remotePeerReflexive, .localPeerReflexive:
                break
            case let .pairSucceeded(local, remote, roundTrip):
                report(.debug, "ICE check succeeded", connection.peer,
                       ["local": "\(local.kind.rawValue) \(local.address)", "remote": "\(remote.kind.rawValue) \(remote.address)",
                        "rtt": "\(roundTrip)"])
            case let .pairFailed(local, remote):
                report(.debug, "ICE candidate pair failed", connection.peer,
                       ["local": "\(local.kind.rawValue) \(local.address)", "remote": "\(remote.kind.rawValue) \(remote.address)"])
            }
        }
        while let transmit = connection.agent.pollTransmit() { send(transmit, now: now) }
    }

    /// The transitions on `NominatedSend` (spec §1.4): leave `Connecting` and flush its buffers, or switch
    /// paths; a client then starts a (debounced) handshake.
    func nominate(_ socket: PeerSocket, for connection: Connection<PeerId>, now: Instant) {
        switch connection.state {
        case .connecting(let wireGuard):
            report(.info, "Connection path selected", connection.peer, ["path": "\(socket)"])
            connection.state = .connected(socket, lastActivity: now)
            for datagram in wireGuard { datagram.withUnsafeBytes { send($0, on: socket, now: now) } }
        case let .connected(current, lastActivity):
            guard current != socket else { return }
            report(.info, "Updating peer socket", connection.peer, ["old": "\(current)", "new": "\(socket)"])
            connection.state = .connected(socket, lastActivity: lastActivity)
        case .idle:
            connection.state = .idle(socket)
        case .failed:
            return
        }
        connection.initiateDebouncedHandshake(now: now)
        drainTunnel(connection, now: now)
    }

    /// Acts on the tunnel's events and sends what its timers and queue produced: on the path, or into the
    /// connecting buffer while there is none.
    func drainTunnel(_ connection: Connection<PeerId>, now: Instant) {
        drainTunnelEvents(connection, now: now)
        let body = UnsafeMutableRawBufferPointer(rebasing: scratch[4...])
        while let count = connection.tunnel.pollTransmit(into: body, now: now) {
            let message = UnsafeRawBufferPointer(rebasing: body[0..<count])
            if let socket = connection.socket {
                send(message, on: socket, now: now)
            } else {
                connection.bufferWireGuard(Array(message))
            }
        }
    }

    /// A connection through a relay ended badly: ask the relay whether our allocation still exists (a 1-second
    /// REFRESH probe). A relay that restarted (coturn keeps its allocations in memory) answers 437, and the
    /// allocation is made again with new relay candidates; BINDING keepalives cannot tell, since a restarted
    /// relay answers them all the same.
    func probeRelay(of connection: Connection<PeerId>, now: Instant) {
        guard let relay = connection.relay else { return }
        allocations.allocation(id: relay)?.refresh(now: now)
    }

    /// Removes failed connections and reports them (spec §1.3 step 7).
    func removeFailedConnections(now: Instant) {
        for connection in connections.values {
            guard case .failed(let reason, _) = connection.state else { continue }
            forget(connection.peer, now: now)
            report(.info, "Connection failed (\(reason))", connection.peer)
            events.append(.connectionFailed(connection.peer, reason: reason))
            probeRelay(of: connection, now: now)
        }
    }
}
