import SansIO
import Stun

extension IceAgent {
    /// Offers a STUN message that arrived from `source` on our address `destination` (a host base, or the
    /// relayed address when it came through the relay). Returns `true` when it was for this agent (a request
    /// with our ufrag, or a response to one of our checks); invalid ones are dropped and counted.
    @discardableResult
    public func handle(_ datagram: [UInt8], from source: SocketAddress, to destination: SocketAddress, now: Instant) -> Bool {
        guard let message = try? StunMessage(decoding: datagram) else {
            lastNow = now
            return false
        }
        return handle(message, from: source, to: destination, now: now)
    }

    /// The same for a message already decoded: a node with many agents decodes each datagram once and offers
    /// it to them in turn.
    @discardableResult
    public func handle(_ message: StunMessage, from source: SocketAddress, to destination: SocketAddress, now: Instant) -> Bool {
        lastNow = now
        guard message.method == .binding else { return false }
        switch message.messageClass {
        case .request: return handleRequest(message, from: source, to: destination, now: now)
        case .successResponse, .errorResponse: return handleResponse(message, from: source, now: now)
        case .indication: return false
        }
    }

    private func handleRequest(_ message: StunMessage, from source: SocketAddress, to destination: SocketAddress, now: Instant) -> Bool {
        guard let username = message.first({ if case .username(let u) = $0 { u } else { nil } }),
              username == inboundUsername
        else { return false }
        let localKey = StunKey.shortTerm(password: localCredentials.password)
        guard message.verifyIntegrity(key: localKey), message.verifyFingerprint() != false,
              let priority = message.first({ if case .priority(let p) = $0 { p } else { nil } })
        else {
            droppedMessages += 1
            return true
        }
        let useCandidate = message.attributes.contains(.useCandidate)
        if let conflict = roleConflict(message) {
            guard conflict == .keepRole else { return true }
            respondRoleConflict(message, from: source, to: destination, key: localKey)
            return true
        }
        if isControlling, useCandidate {
            droppedMessages += 1  // only the controlling side nominates
            return true
        }
        guard let local = localCandidates.first(where: { $0.base == destination || $0.address == destination }) else {
            droppedMessages += 1
            return true
        }
        if !remoteCandidates.contains(where: { $0.address == source }) {
            addRemoteCandidate(IceCandidate(kind: .peerReflexive, address: source, priority: priority))
            events.append(.remotePeerReflexive(source))
        }
        if let pair = pairs.first(where: { $0.local.base == local.base && $0.remote.address == source }) {
            if useCandidate { pair.remoteNominated = true }
            if pair.attempts.isEmpty, pair.state == .waiting { pair.state = .inProgress }
        }
        let response = StunMessage(class: .successResponse, method: .binding, transactionId: message.transactionId,
                                   attributes: [.xorMappedAddress(source)])
        transmits.append(IceTransmit(source: local, destination: source,
                                     payload: response.encode(integrity: .sha1(key: localKey), fingerprint: true)))
        evaluateNomination(now: now)
        updateState()
        return true
    }

    private func handleResponse(_ message: StunMessage, from source: SocketAddress, now: Instant) -> Bool {
        guard let pair = pairs.first(where: { pair in pair.attempts.contains { $0.id == message.transactionId } }) else {
            return false
        }
        guard source == pair.remote.address,
              message.verifyIntegrity(key: StunKey.shortTerm(password: remoteCredentials.password)),
              message.verifyFingerprint() != false
        else {
            droppedMessages += 1
            return true
        }
        if message.messageClass == .errorResponse {
            let code = message.first { if case .errorCode(let code, _) = $0 { code } else { nil } }
            if code == 487 {
                // Role conflict (RFC 8445 §7.2.5.1): switch roles; the next check goes out with the new one.
                isControlling.toggle()
                repriorityPairs()
            }
            return true
        }
        guard let mapped = message.first({ if case .xorMappedAddress(let a) = $0 { a } else { nil } }) else {
            droppedMessages += 1
            return true
        }
        if !localCandidates.contains(where: { $0.address == mapped }) {
            // The peer saw us from an address we never knew: a local peer-reflexive candidate, sending from the
            // same base (RFC 8445 §7.2.5.3.1). Not signalled.
            addLocalCandidate(kind: .peerReflexive, address: mapped, base: pair.local.base)
            events.append(.localPeerReflexive(mapped))
        }
        if let index = pair.attempts.firstIndex(where: { $0.id == message.transactionId }) {
            pair.attempts[index].answered = true
            pair.lastRoundTrip = now - pair.attempts[index].at
        }
        if pair.state != .succeeded, let roundTrip = pair.lastRoundTrip {
            events.append(.pairSucceeded(local: pair.local, remote: pair.remote, roundTrip: roundTrip))
        }
        pair.state = .succeeded
        evaluateNomination(now: now)
        updateState()
        return true
    }

    enum RoleConflictOutcome { case keepRole, switched }

    /// RFC 8445 §7.3.1.1: both sides claim the same role; the larger tie-breaker keeps it.
    private func roleConflict(_ message: StunMessage) -> RoleConflictOutcome? {
        if isControlling, let theirs = message.first({ if case .iceControlling(let t) = $0 { t } else { nil } }) {
            if tieBreaker >= theirs { return .keepRole }
            isControlling = false
            repriorityPairs()
            return nil
        }
        if !isControlling, let theirs = message.first({ if case .iceControlled(let t) = $0 { t } else { nil } }) {
            if tieBreaker >= theirs {
                isControlling = true
                repriorityPairs()
                return nil
            }
            return .keepRole
        }
        return nil
    }

    private func respondRoleConflict(_ message: StunMessage, from source: SocketAddress, to destination: SocketAddress, key: [UInt8]) {
        guard let local = localCandidates.first(where: { $0.base == destination || $0.address == destination }) else { return }
        let response = StunMessage(class: .errorResponse, method: .binding, transactionId: message.transactionId,
                                   attributes: [.errorCode(code: 487, reason: "Role Conflict")])
        transmits.append(IceTransmit(source: local, destination: source,
                                     payload: response.encode(integrity: .sha1(key: key), fingerprint: true)))
    }

    /// After a role change the pair priorities change (G and D swap).
    private func repriorityPairs() {
        let old = pairs
        pairs.removeAll()
        for pair in old {
            let fresh = CandidatePair(local: pair.local, remote: pair.remote, priority: pairPriority(local: pair.local, remote: pair.remote))
            fresh.state = pair.state
            fresh.attempts = pair.attempts
            fresh.remoteNominated = pair.remoteNominated
            pairs.append(fresh)
            if pair === nominatedPair { nominatedPair = fresh }
        }
        pairs.sort { $0.priority > $1.priority }
    }
}
