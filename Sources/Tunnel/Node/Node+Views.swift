import Noise
import SansIO

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
}

extension Node {
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
        return PeerView(peer: connection.peer, state: state, path: connection.socket, relay: connection.relay,
                        isEstablished: connection.announcedEstablished, hasSession: connection.tunnel.currentSessionIndex != nil,
                        canSendWithoutHandshake: connection.socket != nil && connection.tunnel.canSendWithoutHandshake(at: now))
    }
}
