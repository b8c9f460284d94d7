import SansIO
import Stun

/// A sans-IO ICE agent in the style of str0m's (spec `snownet.md` §2): full ICE, trickle, one component,
/// UDP, continuous checks of every pair, nomination by the controlling side.
///
/// It never sends by itself: ``pollTransmit()`` says "send these bytes from local candidate X to remote
/// address Y"; for a relay candidate the owner wraps them in ChannelData.
///
/// ```swift
/// let agent = IceAgent(controlling: true, local: myCredentials, remote: theirCredentials, timings: .clientDefault)
/// agent.addLocalCandidate(kind: .host, address: hostAddress)
/// agent.addRemoteCandidate(try IceCandidateString.parse(signalled, expectedUfrag: theirCredentials.ufrag))
/// agent.handleTimeout(now: now)
/// while let transmit = agent.pollTransmit() { send(transmit) }
/// if case .nominated(let source, let destination) = agent.pollEvent() { … }   // WireGuard goes there
/// ```
public final class IceAgent {
    public internal(set) var isControlling: Bool
    public let localCredentials: IceCredentials
    public let remoteCredentials: IceCredentials
    /// The USERNAME of checks meant for this agent (`local:remote` ufrags), built once: a node offers every
    /// check to each of its agents.
    let inboundUsername: String
    public var timings: IceTimings
    public let tieBreaker: UInt64
    public static let maxPairs = 100

    public internal(set) var localCandidates: [IceCandidate] = []
    public internal(set) var remoteCandidates: [IceCandidate] = []
    var pairs: [CandidatePair] = []
    var nominatedPair: CandidatePair?
    public internal(set) var state: IceState = .checking
    var transmits: [IceTransmit] = []
    var events: [IceEvent] = []
    var random: AnyIceRandom
    var lastNow: Instant?

    /// Counters for metrics: STUN messages dropped because they failed validation.
    public internal(set) var droppedMessages = 0

    public init(controlling: Bool, local: IceCredentials, remote: IceCredentials, timings: IceTimings,
                random: any RandomNumberGenerator = SystemRandomNumberGenerator()) {
        isControlling = controlling
        localCredentials = local
        remoteCredentials = remote
        inboundUsername = "\(local.ufrag):\(remote.ufrag)"
        self.timings = timings
        self.random = AnyIceRandom(base: random)
        tieBreaker = UInt64.random(in: .min ... .max, using: &self.random)
    }

    // MARK: Candidates

    /// Adds a local candidate with str0m's local preference; returns it (with its priority), or `nil` if an
    /// equal one is known. `relayBase` is the family of the socket used to reach the relay, for the
    /// cross-family penalty of relay candidates.
    @discardableResult
    public func addLocalCandidate(kind: IceCandidate.Kind, address: SocketAddress, base: SocketAddress? = nil,
                                  relayBase: SocketAddress? = nil) -> IceCandidate? {
        guard !localCandidates.contains(where: { $0.kind == kind && $0.address == address }) else { return nil }
        let sameKind = localCandidates.filter { $0.kind == kind && $0.address.ip.version == address.ip.version }.count
        var preference = kind.localPreferenceStart - (address.ip.version == .v6 ? 0 : 1) - 2 * UInt32(sameKind)
        if kind == .relayed, let relayBase, relayBase.ip.version != address.ip.version { preference -= 1000 }
        let candidate = IceCandidate(kind: kind, address: address, base: base ?? address,
                                     priority: IceCandidate.priority(kind: kind, localPreference: preference),
                                     ufrag: localCredentials.ufrag)
        localCandidates.append(candidate)
        for remote in remoteCandidates { formPair(local: candidate, remote: remote) }
        reopenIfDisconnected()
        return candidate
    }

    public func addRemoteCandidate(_ candidate: IceCandidate) {
        if let index = remoteCandidates.firstIndex(where: { $0.address == candidate.address }) {
            upgradePeerReflexive(at: index, to: candidate)
            return
        }
        remoteCandidates.append(candidate)
        for local in localCandidates { formPair(local: local, remote: candidate) }
        reopenIfDisconnected()
    }

    /// A check from the peer can arrive before the peer's candidates do (a relayed one, say), and its source became a
    /// peer-reflexive candidate. Once signalled, the candidate takes the signalled kind, and a nomination of it is
    /// announced again so that the path is named by what it is (a relay, not a direct path).
    private func upgradePeerReflexive(at index: Int, to candidate: IceCandidate) {
        guard remoteCandidates[index].kind == .peerReflexive, candidate.kind != .peerReflexive else { return }
        remoteCandidates[index] = candidate
        if let nominatedPair, nominatedPair.remote.address == candidate.address {
            events.append(.nominated(source: nominatedPair.local, destination: candidate.address))
        }
    }

    /// Forgets a local candidate (a relay that went away); its pairs are dropped.
    public func invalidateLocalCandidate(address: SocketAddress) {
        localCandidates.removeAll { $0.address == address }
        dropPairs { $0.local.address == address }
    }

    /// Forgets a remote candidate the peer invalidated; its pairs are dropped.
    public func invalidateRemoteCandidate(address: SocketAddress) {
        remoteCandidates.removeAll { $0.address == address }
        dropPairs { $0.remote.address == address }
    }

    // MARK: Outputs

    public func pollTransmit() -> IceTransmit? {
        transmits.isEmpty ? nil : transmits.removeFirst()
    }

    public func pollEvent() -> IceEvent? {
        events.isEmpty ? nil : events.removeFirst()
    }

    /// The nominated path: send from `source` (a local candidate's base) to `destination`.
    public var nominated: (local: IceCandidate, remote: SocketAddress)? {
        nominatedPair.map { ($0.local, $0.remote.address) }
    }

    /// The nominated pair's candidates, the remote one as this agent knows it (peer-reflexive until signalled).
    public var nominatedCandidates: (local: IceCandidate, remote: IceCandidate)? {
        nominatedPair.map { ($0.local, $0.remote) }
    }

    /// The round-trip time of the nominated pair's latest answered check: the path's RTT as ICE last measured it.
    public var nominatedRoundTrip: Duration? {
        nominatedPair?.lastRoundTrip
    }

    // MARK: Details

    /// Pairs local and remote candidates of the same family; a pair with the same local base and remote
    /// address as an existing one replaces it only if its priority is higher; at most 100 pairs.
    func formPair(local: IceCandidate, remote: IceCandidate) {
        guard local.address.ip.version == remote.address.ip.version else { return }
        let pair = CandidatePair(local: local, remote: remote, priority: pairPriority(local: local, remote: remote))
        if let index = pairs.firstIndex(where: { $0.local.base == local.base && $0.remote.address == remote.address }) {
            guard pair.priority > pairs[index].priority else { return }
            pairs[index] = pair
        } else {
            guard pairs.count < Self.maxPairs else { return }
            pairs.append(pair)
        }
        pairs.sort { $0.priority > $1.priority }
    }

    /// RFC 8445 §6.1.2.3: G the controlling side's candidate priority, D the controlled side's.
    func pairPriority(local: IceCandidate, remote: IceCandidate) -> UInt64 {
        let (g, d) = isControlling ? (UInt64(local.priority), UInt64(remote.priority)) : (UInt64(remote.priority), UInt64(local.priority))
        return (1 << 32) * min(g, d) + 2 * max(g, d) + (g > d ? 1 : 0)
    }

    private func dropPairs(where shouldDrop: (CandidatePair) -> Bool) {
        pairs.removeAll(where: shouldDrop)
        if let nominatedPair, !pairs.contains(where: { $0 === nominatedPair }) {
            self.nominatedPair = nil
        }
        evaluateNomination(now: lastNow)
        updateState()
    }

    private func reopenIfDisconnected() {
        if state == .disconnected, pairs.contains(where: { $0.state != .failed }) { setState(.checking) }
    }

    func setState(_ newState: IceState) {
        guard newState != state else { return }
        state = newState
        events.append(.stateChanged(newState))
    }

    func updateState() {
        let anyPossible = pairs.contains { $0.state != .failed && $0 !== nominatedPair }
        if let nominatedPair, nominatedPair.state != .failed {
            setState(anyPossible ? .connected : .completed)
        } else if pairs.contains(where: { $0.state != .failed }) {
            setState(.checking)
        } else if !pairs.isEmpty || state != .checking {
            // Every pair failed, or the last ones were invalidated.
            setState(.disconnected)
        }
    }
}

/// A ufrag and password, supplied by the portal for both sides. The portal's JSON names the ufrag
/// `username` (spec `portal-phoenix.md` §2: 4 and 22 characters).
public struct IceCredentials: Hashable, Sendable, Codable {
    public var ufrag: String
    public var password: String

    public init(ufrag: String, password: String) {
        self.ufrag = ufrag
        self.password = password
    }

    private enum CodingKeys: String, CodingKey {
        case ufrag = "username"
        case password
    }
}

/// ICE agent states (spec §2.7).
public enum IceState: Hashable, Sendable {
    case checking
    /// A pair is nominated; others are still being checked.
    case connected
    /// A pair is nominated and no other pair is possible.
    case completed
    /// Nothing is nominated and nothing is possible.
    case disconnected
}

/// What the agent tells its owner.
public enum IceEvent: Hashable, Sendable {
    /// Send application data from `source` (a local candidate) to `destination` from now on.
    case nominated(source: IceCandidate, destination: SocketAddress)
    case stateChanged(IceState)
    /// The peer reached us from an address it never signalled.
    case remotePeerReflexive(SocketAddress)
    /// The peer saw us at an address we did not know (behind a NAT): a local peer-reflexive candidate.
    case localPeerReflexive(SocketAddress)
    /// A candidate pair's first check was answered, after `roundTrip`.
    case pairSucceeded(local: IceCandidate, remote: IceCandidate, roundTrip: Duration)
    /// A candidate pair's checks went unanswered too long; it is no longer tried.
    case pairFailed(local: IceCandidate, remote: IceCandidate)
}

/// A STUN message to send from a local candidate (wrap it in ChannelData when that is a relay candidate).
public struct IceTransmit: Hashable, Sendable {
    public var source: IceCandidate
    public var destination: SocketAddress
    public var payload: [UInt8]
}

struct AnyIceRandom: RandomNumberGenerator {
    var base: any RandomNumberGenerator
    mutating func next() -> UInt64 { base.next() }
}
