import SansIO
import Stun

extension TurnAllocation {
    // MARK: Sending

    func sendBinding(to destination: SocketAddress, now: Instant) {
        let message = StunMessage(class: .request, method: .binding, transactionId: .random(using: &random),
                                  attributes: [.software(software)])
        send(message, kind: .binding, to: destination, authenticated: false, schedule: .standard, now: now)
    }

    func sendAllocate(now: Instant) {
        var attributes: [StunAttribute] = [.requestedTransport(17)]
        if let requestedFamily {
            attributes.append(.requestedAddressFamily(requestedFamily))
        } else if requestsAdditionalFamily {
            attributes.append(.additionalAddressFamily(2))
        }
        attributes.append(.software(software))
        sendAuthenticated(.allocate, method: .allocate, attributes: attributes, now: now)
    }

    /// REFRESH carries only LIFETIME (to delete) besides the credentials: coturn answers 420 to the
    /// REQUESTED-TRANSPORT and ADDITIONAL-ADDRESS-FAMILY that Firezone's client also sends (and its relay ignores).
    func sendRefresh(lifetime: UInt32?, now: Instant, schedule: StunRetransmission = .standard) {
        guard !isInFlight(.refresh(lifetime: nil)) else { return }
        var attributes: [StunAttribute] = [.software(software)]
        if let lifetime { attributes.append(.lifetime(seconds: lifetime)) }
        sendAuthenticated(.refresh(lifetime: lifetime), method: .refresh, attributes: attributes, now: now, schedule: schedule)
    }

    func sendChannelBind(channel: UInt16, peer: SocketAddress, now: Instant) {
        sendAuthenticated(.channelBind(channel: channel, peer: peer), method: .channelBind,
                          attributes: [.xorPeerAddress(peer), .channelNumber(channel), .software(software)], now: now)
    }

    /// Signs with the long-term credentials once the server gave a nonce. Before that the request goes out
    /// unsigned: it would be answered 401 either way, and the 401 names the server's realm (a request signed
    /// with a wrong realm gets coturn's 437/441 instead, which names nothing). `transaction` carries a
    /// retransmission timer over to the re-signed request.
    func sendAuthenticated(
        _ kind: PendingRequest.Kind, method: StunMethod, attributes: [StunAttribute], now: Instant,
        schedule: StunRetransmission = .standard, transaction: StunTransaction? = nil
    ) {
        guard let destination = activeSocket else { return }
        var message = StunMessage(class: .request, method: method, transactionId: .random(using: &random), attributes: attributes)
        var integrity: StunIntegrity?
        if let key, let realm, let nonce {
            message.attributes += [.username(credentials.username), .realm(realm), .nonce(nonce)]
            integrity = .sha1(key: key)
        }
        transmits.append(Transmit(destination: destination, payload: message.encode(integrity: integrity)))
        requests[message.transactionId] = PendingRequest(
            kind: kind, destination: destination, transaction: transaction ?? StunTransaction(schedule: schedule, now: now),
            authenticated: integrity != nil, carriedNonce: integrity != nil && nonce != nil, method: method,
            attributes: attributes)
    }

    private func send(_ message: StunMessage, kind: PendingRequest.Kind, to destination: SocketAddress, authenticated: Bool,
                      schedule: StunRetransmission, now: Instant) {
        transmits.append(Transmit(destination: destination, payload: message.encode()))
        requests[message.transactionId] = PendingRequest(
            kind: kind, destination: destination, transaction: StunTransaction(schedule: schedule, now: now),
            authenticated: authenticated, carriedNonce: false, method: message.method, attributes: message.attributes)
    }

    /// Retransmits: BINDING under its own id; TURN requests re-signed under a new id (a late answer to the
    /// old one is then ignored), keeping the retransmission timer.
    func retransmit(_ id: TransactionId) {
        guard let request = requests[id] else { return }
        guard request.kind != .binding else {
            let message = StunMessage(class: .request, method: request.method, transactionId: id, attributes: request.attributes)
            transmits.append(Transmit(destination: request.destination, payload: message.encode()))
            return
        }
        requests[id] = nil
        sendAuthenticated(request.kind, method: request.method, attributes: request.attributes,
                          now: request.transaction.startedAt, transaction: request.transaction)
    }

    // MARK: Receiving

    /// Offers a datagram that arrived from `source` (on our socket `local`, when the IO layer knows it: a
    /// BINDING answer then yields a host candidate). Returns `true` when it was a response to one of this
    /// allocation's requests (consumed, accepted or not).
    @discardableResult
    public func handle(_ datagram: [UInt8], from source: SocketAddress, local: SocketAddress? = nil, now: Instant) -> Bool {
        guard let message = try? StunMessage(decoding: datagram),
              message.messageClass == .successResponse || message.messageClass == .errorResponse,
              let request = requests[message.transactionId]
        else { return false }
        guard source == request.destination else { return false }
        guard accepts(message, for: request) else {
            ignoredResponses += 1
            return true
        }
        receivedAnyResponse = true
        requests[message.transactionId] = nil
        if message.messageClass == .successResponse {
            if request.kind == .binding, !server.transport.isStream, let local, !hostAddresses.contains(local) {
                hostAddresses.removeAll { $0.ip.version == local.ip.version }
                hostAddresses.append(local)
                events.append(.hostCandidate(local))
            }
            handleSuccess(message, request: request, now: now)
        } else {
            handleError(message, request: request, now: now)
        }
        return true
    }

    /// BINDING answers are accepted unauthenticated. Success responses to authenticated requests must carry a
    /// valid MESSAGE-INTEGRITY; error responses may omit it (a standard server's 401/438 does), but one that
    /// carries it must verify (Firezone's relay signs them all).
    private func accepts(_ message: StunMessage, for request: PendingRequest) -> Bool {
        guard request.kind != .binding else { return true }
        if message.hasIntegrity {
            guard let key else { return message.messageClass == .errorResponse }
            return message.verifyIntegrity(key: key)
        }
        return message.messageClass == .errorResponse || !request.authenticated
    }

    private func handleSuccess(_ message: StunMessage, request: PendingRequest, now: Instant) {
        switch request.kind {
        case .binding:
            if !server.transport.isStream, let mapped = message.first({ if case .xorMappedAddress(let a) = $0 { a } else { nil } }),
               !serverReflexiveAddresses.contains(mapped) {
                serverReflexiveAddresses.removeAll { $0.ip.version == mapped.ip.version }
                serverReflexiveAddresses.append(mapped)
                events.append(.serverReflexiveCandidate(mapped))
            }
            guard activeSocket == nil else { return }
            activeSocket = request.destination
            // The other family's BINDING no longer matters for socket selection.
            for (id, other) in requests where other.kind == .binding && other.destination != request.destination {
                requests[id] = nil
            }
            if isAllocated { sendRefresh(lifetime: nil, now: now) } else { sendAllocate(now: now) }
        case .allocate:
            let relays = message.attributes.compactMap { if case .xorRelayedAddress(let a) = $0 { a } else { nil } }
            guard let seconds = message.first({ if case .lifetime(let s) = $0 { s } else { nil } }), !relays.isEmpty else {
                ignoredResponses += 1
                return
            }
            lifetime = .seconds(Int64(seconds))
            allocatedAt = now
            lastKeepalive = now
            relayAddresses = relays
            for relay in relays { events.append(.relayCandidate(relay)) }
            events.append(.allocated(lifetime: lifetime))
            let binds = bufferedBinds
            bufferedBinds.removeAll()
            for peer in binds { bindChannel(to: peer, now: now) }
        case .refresh(let requested):
            if requested == 0 {
                invalidateAllocation()
                if reallocateAfterDelete {
                    reallocateAfterDelete = false
                    sendAllocate(now: now)
                }
                return
            }
            if let seconds = message.first({ if case .lifetime(let s) = $0 { s } else { nil } }) {
                lifetime = .seconds(Int64(seconds))
            }
            allocatedAt = now
            bindsAwaitingProbe.removeAll()  // the allocation lives: those binds were refused on their own account
            events.append(.refreshed(lifetime: lifetime))
        case let .channelBind(channel, peer):
            guard channels[channel]?.peer == peer else { return }
            channels[channel]?.bound = true
            channels[channel]?.boundAt = now
            events.append(.channelBound(peer: peer, channel: channel))
        }
    }

    private func handleError(_ message: StunMessage, request: PendingRequest, now: Instant) {
        let code = message.first { if case .errorCode(let code, _) = $0 { code } else { nil } } ?? 0
        let reason = message.first { if case .errorCode(_, let reason) = $0 { reason } else { nil } } ?? ""
        switch (code, request.kind) {
        case (401, _) where request.carriedNonce, (441, _):
            fail(.badCredentials)
        case (401, _), (438, _):
            guard let nonce = message.first({ if case .nonce(let n) = $0 { n } else { nil } }) else {
                fail(.serverError(code: code, reason: reason))
                return
            }
            if let announced = message.first({ if case .realm(let r) = $0 { r } else { nil } }) {
                if let expected = credentials.realm, expected != announced {
                    fail(.realmMismatch(expected: expected, received: announced))
                    return
                }
                realm = announced
                key = StunKey.longTerm(username: credentials.username, realm: announced, password: credentials.password)
            }
            self.nonce = nonce
            sendAuthenticated(request.kind, method: request.method, attributes: request.attributes, now: now,
                              schedule: request.transaction.schedule)
        case (437, .allocate):
            invalidateAllocation()
            reallocateAfterDelete = true
            sendRefresh(lifetime: 0, now: now)
        case (437, _):
            events.append(.allocationMissing)
            invalidateAllocation()
            if case let .channelBind(channel, peer) = request.kind {
                forgetChannel(channel)
                bindsAwaitingProbe.append(peer)
            }
            for peer in bindsAwaitingProbe where !bufferedBinds.contains(peer) && bufferedBinds.count < 100 {
                bufferedBinds.append(peer)
            }
            bindsAwaitingProbe.removeAll()
            sendAllocate(now: now)
        case (420, _):
            fail(.unknownAttribute(message.first { if case .unknownAttributes(let t) = $0 { t } else { nil } } ?? []))
        case (440, .allocate) where requestsAdditionalFamily:
            // A single-stack standard server refuses the additional IPv6 family: allocate IPv4 only, or IPv6 alone from a
            // relay known only by its IPv6 address.
            requestsAdditionalFamily = false
            if server.ipv4 == nil { requestedFamily = 2 }
            sendAllocate(now: now)
        case (440, .allocate) where requestedFamily == nil && server.ipv6 != nil:
            // IPv4 refused too: a relay without IPv4. Ask for IPv6 alone (a deviation: Firezone's client never does).
            requestedFamily = 2
            sendAllocate(now: now)
        case (_, .allocate):
            bufferedBinds.removeAll()
            fail(.serverError(code: code, reason: reason))
        case let (_, .channelBind(channel, peer)):
            // A relay that lost the allocation may say so with another code than 437 (coturn before 4.7 answers
            // 400): ask at once whether it still exists, with a REFRESH whose 437 allocates again, rather than
            // binding further channel numbers on an allocation that is gone.
            forgetChannel(channel)
            guard isAllocated else { return }
            if !bindsAwaitingProbe.contains(peer), bindsAwaitingProbe.count < 100 { bindsAwaitingProbe.append(peer) }
            events.append(.probing(.channelBindRefused(code: code)))
            sendRefresh(lifetime: nil, now: now)
        default:
            break
        }
    }

    func fail(_ reason: AllocationFailure) {
        guard failure == nil else { return }
        failure = reason
        invalidateAllocation()
        requests.removeAll()
        bufferedBinds.removeAll()
        bindsAwaitingProbe.removeAll()
        events.append(.failed(reason))
    }

    func invalidateAllocation() {
        for relay in relayAddresses { events.append(.relayCandidateInvalidated(relay)) }
        relayAddresses.removeAll()
        allocatedAt = nil
        unansweredSince = nil
        channels.removeAll()
        channelByPeer.removeAll()
    }

    func forgetChannel(_ channel: UInt16) {
        guard let removed = channels.removeValue(forKey: channel) else { return }
        channelByPeer[removed.peer] = nil
    }
}
