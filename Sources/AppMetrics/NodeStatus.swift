import Foundation
import Ice
import SansIO
import Tunnel
import Turn

/// What `firezone-client status` and `firezone-gateway status` show: the node and every peer connection, as the
/// running process reports it over its status socket (``StatusServer``) in JSON.
public struct NodeStatus: Codable, Sendable, Equatable {
    /// `client` or `gateway`.
    public var role: String
    /// This session's WireGuard public key, base64.
    public var publicKey: String
    public var peers: [PeerStatus]
    public var relays: [RelayStatus]

    public init(role: String, publicKey: String, peers: [PeerStatus], relays: [RelayStatus]) {
        self.role = role
        self.publicKey = publicKey
        self.peers = peers
        self.relays = relays
    }
}

/// One peer connection: its path, how it performs, what it carries.
public struct PeerStatus: Codable, Sendable, Equatable {
    /// The peer's id: a gateway's (`gid`) on the client, a client's (`cid`) on the gateway.
    public var id: String
    /// `connecting`, `connected`, `idle` or `failed`.
    public var state: String
    /// `direct`, `relayed` or `none` (no path yet).
    public var path: String
    /// Where this side sends: the nominated path in words (``PeerSocket``'s description).
    public var route: String?
    /// The relay of ours that carries the traffic, on a path through it.
    public var relay: RelayStatus?
    /// The peer's relayed address, on a path through the peer's relay.
    public var peerRelayAddress: String?
    /// The nominated ICE pair, e.g. `host 10.0.0.2:52625` and `srflx 198.51.100.7:4500`.
    public var localCandidate: String?
    public var remoteCandidate: String?
    /// The path's round-trip time from ICE's latest answered check.
    public var rttMilliseconds: Double?
    /// Seconds since the latest WireGuard handshake completed.
    public var lastHandshakeSecondsAgo: Double?
    public var packetsSent: Int
    public var packetsReceived: Int
    public var bytesSent: Int
    public var bytesReceived: Int
    /// The resources authorised on this connection (`rid`s of resources, sorted).
    public var resources: [String]
}

/// A relay the node knows (Firezone's `rid`) and what it allocated there.
public struct RelayStatus: Codable, Sendable, Equatable {
    public var id: String
    /// The relay's addresses, e.g. `10.99.0.2:3478`.
    public var addresses: [String]
    /// How this node reaches it: `udp`.
    public var transport: String
    /// The relayed addresses of this node's allocation; empty while it has none.
    public var allocated: [String]
}

extension NodeStatus {
    /// The status of a node's connections at `now`; `resources` names the resources authorised on a peer.
    public static func make<PeerId: Hashable & Sendable & CustomStringConvertible>(
        role: String, publicKey: String, peers: [PeerView<PeerId>], relays: [RelayView], now: Instant,
        resources: (PeerId) -> [String]
    ) -> NodeStatus {
        let relayStatuses = relays.map(RelayStatus.init)
        let peerStatuses = peers.map { view in
            PeerStatus(view, now: now, relay: view.path?.ownRelay.flatMap { id in relayStatuses.first { $0.id == id } },
                       resources: resources(view.peer))
        }
        return NodeStatus(role: role, publicKey: publicKey, peers: peerStatuses.sorted { $0.id < $1.id }, relays: relayStatuses)
    }

    /// Pretty-printed JSON with sorted keys.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

extension PeerStatus {
    init<PeerId: Hashable & Sendable & CustomStringConvertible>(_ view: PeerView<PeerId>, now: Instant, relay: RelayStatus?,
                                                               resources: [String]) {
        id = view.peer.description
        state = switch view.state {
        case .connecting: "connecting"
        case .connected: "connected"
        case .idle: "idle"
        case .failed: "failed"
        }
        path = view.path.map { $0.isRelayed ? "relayed" : "direct" } ?? "none"
        route = view.path?.description
        self.relay = relay
        if case .peerToRelay(_, let destination)? = view.path { peerRelayAddress = destination.description }
        if case .relayToRelay(_, let destination)? = view.path { peerRelayAddress = destination.description }
        localCandidate = view.localCandidate.map(Self.describe)
        remoteCandidate = view.remoteCandidate.map(Self.describe)
        rttMilliseconds = view.roundTrip.map(Self.milliseconds)
        lastHandshakeSecondsAgo = view.lastHandshake.map { Self.milliseconds(now - $0) / 1000 }
        packetsSent = view.traffic.packetsSent
        packetsReceived = view.traffic.packetsReceived
        bytesSent = view.traffic.bytesSent
        bytesReceived = view.traffic.bytesReceived
        self.resources = resources
    }

    static func describe(_ candidate: IceCandidate) -> String {
        "\(candidate.kind.rawValue) \(candidate.address)"
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return ((Double(seconds) * 1000 + Double(attoseconds) / 1e15) * 1000).rounded() / 1000
    }
}

extension RelayStatus {
    init(_ view: RelayView) {
        id = view.id
        addresses = view.server.addresses.map(\.description)
        transport = view.server.transport.description
        allocated = view.relayAddresses.map(\.description)
    }
}
