import Ice

/// A kind of peer that ICE candidates are exchanged with: the JSON keys name it (`gateway_id`, `client_ids`).
public protocol CandidatePeer {
    /// `gateway` or `client`.
    static var keyPrefix: String { get }
}

extension GatewayTag: CandidatePeer {
    public static var keyPrefix: String { "gateway" }
}

extension ClientTag: CandidatePeer {
    public static var keyPrefix: String { "client" }
}

/// Candidates from, or invalidated by, one peer: `{"gateway_id", "candidates"}` to a client (§3.7),
/// `{"client_id", "candidates"}` to a gateway (§4.6).
public struct PeerCandidates<Peer: CandidatePeer>: Hashable, Sendable, Codable {
    public var peer: PortalId<Peer>
    public var candidates: [IceCandidate]

    public init(peer: PortalId<Peer>, candidates: [IceCandidate]) {
        self.peer = peer
        self.candidates = candidates
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CandidateKey.self)
        peer = try container.decode(PortalId<Peer>.self, forKey: CandidateKey("\(Peer.keyPrefix)_id"))
        candidates = try IceCandidateList.decode(container, forKey: CandidateKey("candidates"))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CandidateKey.self)
        try container.encode(peer, forKey: CandidateKey("\(Peer.keyPrefix)_id"))
        try IceCandidateList.encode(candidates, &container, forKey: CandidateKey("candidates"))
    }
}

/// Candidates for the peers listed, always one: `{"gateway_ids", "candidates"}` from a client (§3.11),
/// `{"client_ids", "candidates"}` from a gateway (§4.7).
public struct CandidatesForPeers<Peer: CandidatePeer>: Hashable, Sendable, Codable {
    public var peers: [PortalId<Peer>]
    public var candidates: [IceCandidate]

    public init(peers: [PortalId<Peer>], candidates: [IceCandidate]) {
        self.peers = peers
        self.candidates = candidates
    }

    /// The candidates for one peer: a v2 message, as a broadcast.
    public init(_ single: PeerCandidates<Peer>) {
        self.init(peers: [single.peer], candidates: single.candidates)
    }

    /// One message per peer, as the v2 client sends them.
    public var perPeer: [PeerCandidates<Peer>] {
        peers.map { PeerCandidates(peer: $0, candidates: candidates) }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CandidateKey.self)
        peers = try container.decode([PortalId<Peer>].self, forKey: CandidateKey("\(Peer.keyPrefix)_ids"))
        candidates = try IceCandidateList.decode(container, forKey: CandidateKey("candidates"))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CandidateKey.self)
        try container.encode(peers, forKey: CandidateKey("\(Peer.keyPrefix)_ids"))
        try IceCandidateList.encode(candidates, &container, forKey: CandidateKey("candidates"))
    }
}

/// Candidates from one gateway, as a client receives them.
public typealias GatewayCandidates = PeerCandidates<GatewayTag>
/// Candidates from one client, as a gateway receives them.
public typealias ClientCandidates = PeerCandidates<ClientTag>
/// A client's candidates for its gateway.
public typealias CandidatesForGateways = CandidatesForPeers<GatewayTag>
/// A gateway's candidates for its client.
public typealias CandidatesForClients = CandidatesForPeers<ClientTag>

struct CandidateKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { stringValue = name }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
