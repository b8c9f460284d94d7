import Ice
import Noise
import SansIO
import Turn

/// Which end of a connection a node is (spec `snownet.md` §1.1): the role decides ICE controlling or
/// controlled, the STUN timings, whether packets may be sent before ICE nominated a path, and who starts
/// WireGuard handshakes.
public enum NodeRole: Hashable, Sendable {
    /// Controlling; buffers packets while connecting and starts handshakes.
    case client
    /// Controlled; drops packets until a path is nominated and never handshakes proactively.
    case gateway

    var isControlling: Bool { self == .client }
    var defaultTimings: IceTimings { self == .client ? .clientDefault : .gatewayDefault }
    var idleTimings: IceTimings { self == .client ? .clientIdle : .gatewayIdle }
}

/// How a connection's packets travel once ICE nominated a pair (spec §1.4).
public enum PeerSocket: Hashable, Sendable, CustomStringConvertible {
    /// From our host or server-reflexive socket to the peer's host or server-reflexive address.
    case peerToPeer(source: SocketAddress, destination: SocketAddress)
    /// From our socket to the peer's relayed address.
    case peerToRelay(source: SocketAddress, destination: SocketAddress)
    /// ChannelData through our relay to the peer's own address.
    case relayToPeer(relay: String, destination: SocketAddress)
    /// ChannelData through our relay to the peer's relayed address.
    case relayToRelay(relay: String, destination: SocketAddress)

    /// Whether any relay carries the traffic.
    public var isRelayed: Bool {
        guard case .peerToPeer = self else { return true }
        return false
    }

    /// The relay of ours that wraps the traffic in ChannelData, if any.
    public var ownRelay: String? {
        switch self {
        case .relayToPeer(let relay, _), .relayToRelay(let relay, _): relay
        case .peerToPeer, .peerToRelay: nil
        }
    }

    public var destination: SocketAddress {
        switch self {
        case .peerToPeer(_, let destination), .peerToRelay(_, let destination),
             .relayToPeer(_, let destination), .relayToRelay(_, let destination): destination
        }
    }

    public var description: String {
        switch self {
        case let .peerToPeer(source, destination): "direct \(source) -> \(destination)"
        case let .peerToRelay(source, destination): "\(source) -> peer's relay \(destination)"
        case let .relayToPeer(relay, destination): "via relay \(relay) -> \(destination)"
        case let .relayToRelay(relay, destination): "via relay \(relay) -> peer's relay \(destination)"
        }
    }
}

/// A relay the portal announced: its id, addresses and credentials (spec §3.9).
public struct RelayDescription: Hashable, Sendable {
    public var id: String
    public var server: RelayServer
    public var credentials: TurnCredentials

    public init(id: String, server: RelayServer, credentials: TurnCredentials) {
        self.id = id
        self.server = server
        self.credentials = credentials
    }
}

/// A datagram for the IO layer to send. `source` is the local address to send from (peer traffic must leave
/// from the socket ICE checked); `nil` means any socket (relay traffic). `transport` says whether it goes on the
/// relay's TCP or TLS stream (``Node/relayStreams``) instead of a UDP socket.
public struct NodeTransmit: Hashable, Sendable {
    public var source: SocketAddress?
    public var destination: SocketAddress
    public var payload: [UInt8]
    public var transport: RelayTransport

    public init(source: SocketAddress?, destination: SocketAddress, payload: [UInt8], transport: RelayTransport = .udp) {
        self.source = source
        self.destination = destination
        self.payload = payload
        self.transport = transport
    }
}

/// Where ``Node/encapsulate(_:packet:into:now:)`` put an encrypted packet: the first `count` bytes of the
/// output buffer go from `source` to `destination`.
public struct EncryptedDatagram: Hashable, Sendable {
    public var source: SocketAddress?
    public var destination: SocketAddress
    public var count: Int
}

/// What the node tells the layer above.
public enum NodeEvent<PeerId: Hashable & Sendable>: Hashable, Sendable {
    /// Signal this local candidate to the peer (through the portal).
    case newIceCandidate(peer: PeerId, candidate: IceCandidate)
    /// Tell the peer to forget this candidate.
    case invalidateIceCandidate(peer: PeerId, candidate: IceCandidate)
    /// The first WireGuard handshake with the peer completed.
    case connectionEstablished(PeerId)
    /// The connection gave up (no candidates, ICE timeout, WireGuard expiry); its state is gone.
    case connectionFailed(PeerId, reason: ConnectionFailure)
    /// The connection was closed by this side (close or reset).
    case connectionClosed(PeerId)
}

/// Why a connection failed (spec §1.4).
public enum ConnectionFailure: Hashable, Sendable, CustomStringConvertible {
    case noCandidatesReceived
    /// No relay answered, so the node learnt no address of its own to offer.
    case noLocalCandidates
    case iceTimeout
    case wireGuardExpired

    public var description: String {
        switch self {
        case .noCandidatesReceived: "no candidates received within 10 s"
        case .noLocalCandidates: "no candidates of our own within 10 s"
        case .iceTimeout: "ICE disconnected for 2 s"
        case .wireGuardExpired: "WireGuard could not establish a session"
        }
    }
}

/// Why the node refused an input or a request. Every refusal of network input is counted in
/// ``Node/statistics``.
public enum NodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No connection to this peer (`recentlyDisconnected` when one ended less than 5 s ago).
    case unknownConnection(recentlyDisconnected: Bool)
    /// A connection needs at least one relay.
    case noTurnServers
    /// All 2^24 − 1 connection indices are in use.
    case tooManyPeers
    /// The connection failed and waits to be removed.
    case connectionFailed
    /// A client's connection has no WireGuard session yet: keep the packet until
    /// ``NodeEvent/connectionEstablished(_:)``.
    case stillConnecting
    /// A datagram that is neither STUN, ChannelData from a relay, nor WireGuard.
    case notWireGuard(length: Int, from: SocketAddress)
    /// A handshake initiation from a key no connection expects.
    case unknownPeerKey(from: SocketAddress)
    /// A WireGuard message for a session index no connection owns.
    case unknownSessionIndex(UInt32, from: SocketAddress)
    /// The peer's tunnel refused the message.
    case wireGuard(WireGuardError, from: SocketAddress)

    public var description: String {
        switch self {
        case .unknownConnection(let recent): recent ? "connection recently disconnected" : "unknown connection"
        case .noTurnServers: "no TURN servers known"
        case .tooManyPeers: "too many peers: connection indices exhausted"
        case .connectionFailed: "the connection failed"
        case .stillConnecting: "the connection is still being set up"
        case let .notWireGuard(length, from): "not a WireGuard packet (\(length) bytes from \(from))"
        case .unknownPeerKey(let from): "handshake initiation from \(from) with an unknown public key"
        case let .unknownSessionIndex(index, from): "no connection for session index \(index) (from \(from))"
        case let .wireGuard(error, from): "\(error) (from \(from))"
        }
    }
}

/// Counts of what the node dropped, for metrics.
public struct NodeStatistics: Hashable, Sendable {
    /// Datagrams from a relay we no longer use.
    public var fromStaleRelay = 0
    /// STUN messages no agent or allocation accepted.
    public var unmatchedStun = 0
    /// ChannelData on an unbound channel.
    public var unboundChannelData = 0
    /// Datagrams refused with a ``NodeError``.
    public var refused = 0
    /// Packets dropped because a relayed path had no channel yet, or the gateway had no path.
    public var droppedWithoutPath = 0
    /// Handshake initiations answered with a cookie reply under load, before any peer was looked for.
    public var cookieRepliesSent = 0
}
