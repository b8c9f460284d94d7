import Ice
import Noise
import SansIO

/// One peer: an ICE agent, a WireGuard tunnel, the relay it uses, and where it is in the state machine of
/// spec `snownet.md` §1.4.
final class Connection<PeerId: Hashable & Sendable> {
    enum State {
        /// No nominated path yet: WireGuard's handshake messages wait here (128, oldest dropped). IP packets
        /// wait above the node, in the client, until the first session (``Node/encapsulate(_:packet:into:now:)``).
        case connecting(wireGuard: [[UInt8]])
        case connected(PeerSocket, lastActivity: Instant)
        case idle(PeerSocket)
        case failed(ConnectionFailure, at: Instant)
    }

    static var bufferCapacity: Int { 128 }
    static var candidateTimeout: Duration { .seconds(10) }
    static var disconnectTimeout: Duration { .seconds(2) }
    static var maxIdle: Duration { .seconds(20) }
    static var handshakeDebounce: Duration { .seconds(20) }

    let peer: PeerId
    let index: UInt32
    let agent: IceAgent
    let tunnel: WireGuardTunnel
    let presharedKey: SecretKey
    let createdAt: Instant
    let role: NodeRole
    var relay: String?
    var state: State = .connecting(wireGuard: [])
    var hasRemoteCandidates = false
    var disconnectedSince: Instant?
    var lastProactiveHandshake: Instant?
    var announcedEstablished = false

    init(peer: PeerId, index: UInt32, agent: IceAgent, tunnel: WireGuardTunnel, presharedKey: SecretKey,
         relay: String, role: NodeRole, now: Instant) {
        self.peer = peer
        self.index = index
        self.agent = agent
        self.tunnel = tunnel
        self.presharedKey = presharedKey
        self.relay = relay
        self.role = role
        createdAt = now
    }

    /// The nominated path, if any.
    var socket: PeerSocket? {
        switch state {
        case .connected(let socket, _), .idle(let socket): socket
        case .connecting, .failed: nil
        }
    }

    var isFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// Whether an upsert with these parameters may keep this connection (spec §1.5, seed 004 #9999).
    func matches(remoteKey: PublicKey, presharedKey: SecretKey, local: IceCredentials, remote: IceCredentials) -> Bool {
        !isFailed && tunnel.remotePublicKey == remoteKey && self.presharedKey.base64 == presharedKey.base64
            && agent.localCredentials == local && agent.remoteCredentials == remote
    }

    /// Application traffic or signalling: refresh `lastActivity`, and leave `Idle` with default STUN timings.
    func markActivity(now: Instant) {
        switch state {
        case .connected(let socket, _):
            state = .connected(socket, lastActivity: now)
        case .idle(let socket):
            state = .connected(socket, lastActivity: now)
            agent.timings = role.defaultTimings
        case .connecting, .failed:
            break
        }
    }

    func fail(_ reason: ConnectionFailure, now: Instant) {
        guard !isFailed else { return }
        state = .failed(reason, at: now)
    }

    func bufferWireGuard(_ datagram: [UInt8]) {
        guard case .connecting(var wireGuard) = state else { return }
        state = .connecting(wireGuard: [])
        if wireGuard.count == Self.bufferCapacity { wireGuard.removeFirst() }
        wireGuard.append(datagram)
        state = .connecting(wireGuard: wireGuard)
    }

    /// Starts a handshake unless one ran within the last 20 s or is in progress (spec §5.4).
    func initiateDebouncedHandshake(now: Instant) {
        guard role.isControlling, !tunnel.isHandshakeInProgress else { return }
        if let last = lastProactiveHandshake, now - last < Self.handshakeDebounce { return }
        if tunnel.initiateHandshake(now: now) { lastProactiveHandshake = now }
    }

    /// The earliest moment one of this connection's own timers (not the agent's or tunnel's) fires.
    func nextDeadline() -> Instant? {
        var deadlines: [Instant] = []
        if case .failed(_, let at) = state { return at }
        if !hasRemoteCandidates || (socket == nil && agent.localCandidates.isEmpty) {
            deadlines.append(createdAt + Self.candidateTimeout)
        }
        if let since = disconnectedSince { deadlines.append(since + Self.disconnectTimeout) }
        if case .connected(_, let lastActivity) = state, agent.state == .connected {
            deadlines.append(lastActivity + Self.maxIdle)
        }
        return deadlines.min()
    }

    /// Moves to `Failed` or `Idle` when their deadline passed.
    func checkDeadlines(now: Instant) {
        if !hasRemoteCandidates, now >= createdAt + Self.candidateTimeout {
            fail(.noCandidatesReceived, now: now)
        }
        // Host and server-reflexive candidates come from the relays' answers: with none, the agent has no pair to
        // check and would never leave checking.
        if socket == nil, agent.localCandidates.isEmpty, now >= createdAt + Self.candidateTimeout {
            fail(.noLocalCandidates, now: now)
        }
        if let since = disconnectedSince, now >= since + Self.disconnectTimeout {
            fail(.iceTimeout, now: now)
        }
        if case .connected(let socket, let lastActivity) = state, agent.state == .connected,
           now >= lastActivity + Self.maxIdle {
            state = .idle(socket)
            agent.timings = role.idleTimings
        }
    }
}
