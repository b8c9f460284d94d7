import Ice
import Noise
import SansIO
import Turn

/// What a node knows of one connection: for status views, metrics and tests.
public struct PeerView<PeerId: Hashable & Sendable>: Hashable, Sendable {
    public enum State: Hashable, Sendable {
        /// ICE has not nominated a path yet.
        case connecting
        case connected
        /// Connected, without traffic for 20 s: slower STUN timings.
        case idle
        /// Failed; removed at the next timeout.
        case failed
    }

    public var peer: PeerId
    public var state: State
    /// The nominated path; `nil` while connecting.
    public var path: PeerSocket?
    /// The relay whose candidates the connection offers.
    public var relay: String?
    /// Whether the first WireGuard session completed (``NodeEvent/connectionEstablished(_:)``).
    public var isEstablished: Bool
    /// Whether a WireGuard session exists.
    public var hasSession: Bool
    /// Whether that session can carry a packet now, without a new handshake.
    public var canSendWithoutHandshake: Bool
    /// The relay that carries this side's traffic (the path is ``PeerSocket/relayToPeer(relay:destination:)`` or
    /// ``PeerSocket/relayToRelay(relay:destination:)``): its addresses. `nil` on a direct path or through the
    /// peer's relay.
    public var relayServer: RelayServer? = nil
    /// The path's round-trip time, as ICE's latest answered check on the nominated pair measured it.
    public var roundTrip: Duration? = nil
    /// When the latest WireGuard handshake completed.
    public var lastHandshake: Instant? = nil
    /// Data messages and their bytes each way, WireGuard's overhead included.
    public var traffic = PeerTraffic()
    /// The nominated candidate pair: this side's candidate and the peer's.
    public var localCandidate: IceCandidate? = nil
    public var remoteCandidate: IceCandidate? = nil
}

/// A connection's data messages each way (as `wg show` counts transfer).
public struct PeerTraffic: Hashable, Sendable {
    public var packetsSent = 0
    public var packetsReceived = 0
    public var bytesSent = 0
    public var bytesReceived = 0

    public init(packetsSent: Int = 0, packetsReceived: Int = 0, bytesSent: Int = 0, bytesReceived: Int = 0) {
        self.packetsSent = packetsSent
        self.packetsReceived = packetsReceived
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
    }
}

/// One relay the node knows: where it is and what it allocated for this node.
public struct RelayView: Hashable, Sendable {
    /// The relay's id, Firezone's `rid`.
    public var id: String
    public var server: RelayServer
    /// The socket the relay answers from; `nil` until it answered.
    public var activeSocket: SocketAddress?
    /// The relayed addresses of the current allocation; empty while there is none.
    public var relayAddresses: [SocketAddress]
}

extension Node {
    /// Every relay the node knows, in the order they were added.
    public var relayViews: [RelayView] {
        allocations.entries.map { entry in
            RelayView(id: entry.id, server: entry.allocation.server, activeSocket: entry.allocation.activeSocket,
                      relayAddresses: entry.allocation.relayAddresses)
        }
    }

    /// Every connection as it is at `now`.
    public func peerViews(now: Instant) -> [PeerView<PeerId>] {
        connections.values.map { view(of: $0, now: now) }
    }

    /// One connection as it is at `now`, if there is one.
    public func peerView(_ peer: PeerId, now: Instant) -> PeerView<PeerId>? {
        connections[peer].map { view(of: $0, now: now) }
    }

    /// Each timer's next deadline by component, for diagnosing a driver that keeps waking the node for nothing.
    public func timerReport() -> String {
        var parts: [String] = []
        for (id, allocation) in allocations.entries { parts.append("allocation \(id): \(String(describing: allocation.pollTimeout()))") }
        for (peer, connection) in connections {
            parts.append("connection \(peer): own \(String(describing: connection.nextDeadline())) "
                + "agent \(String(describing: connection.agent.pollTimeout())) wg \(String(describing: connection.tunnel.pollTimeout()))")
        }
        return parts.joined(separator: "; ")
    }

    private func view(of connection: Connection<PeerId>, now: Instant) -> PeerView<PeerId> {
        let state: PeerView<PeerId>.State
        switch connection.state {
        case .connecting: state = .connecting
        case .connected: state = .connected
        case .idle: state = .idle
        case .failed: state = .failed
        }
        var view = PeerView(peer: connection.peer, state: state, path: connection.socket, relay: connection.relay,
                            isEstablished: connection.announcedEstablished, hasSession: connection.tunnel.currentSessionIndex != nil,
                            canSendWithoutHandshake: connection.socket != nil && connection.tunnel.canSendWithoutHandshake(at: now))
        switch connection.socket {
        case .relayToPeer(let relay, _)?, .relayToRelay(let relay, _)?:
            view.relayServer = allocations.allocation(id: relay)?.server
        default: break
        }
        view.roundTrip = connection.agent.nominatedRoundTrip
        view.lastHandshake = connection.tunnel.lastHandshake
        let statistics = connection.tunnel.statistics
        view.traffic = PeerTraffic(packetsSent: statistics.packetsSent, packetsReceived: statistics.packetsReceived,
                                   bytesSent: statistics.bytesSent, bytesReceived: statistics.bytesReceived)
        view.localCandidate = connection.agent.nominatedCandidates?.local
        view.remoteCandidate = connection.agent.nominatedCandidates?.remote
        return view
    }
}
