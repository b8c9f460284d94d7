import SansIO
import Stun

extension TurnAllocation {
    /// Refresh, keepalive and expiry intervals (spec §3.2, §3.4).
    public static let keepaliveInterval: Duration = .seconds(25)
    public static let channelLifetime: Duration = .seconds(600)
    public static let channelRefreshAge: Duration = .seconds(300)
    /// A used channel number is recycled only after its lifetime plus the relay's rebind cool-down.
    public static let channelRecycleAge: Duration = .seconds(900)
    /// ChannelData went out for this long and none came back: a REFRESH asks whether the allocation still exists.
    public static let silenceBeforeProbe: Duration = .seconds(3)

    /// Runs the due timers: retransmissions and abandoned requests, refresh at half the lifetime, BINDING
    /// keepalives, channel refreshes, and expiry.
    public func handleTimeout(now: Instant) {
        guard failure == nil else { return }
        for id in Array(requests.keys) {
            guard var transaction = requests[id]?.transaction else { continue }
            let action = transaction.handleTimeout(now: now)
            requests[id]?.transaction = transaction
            switch action {
            case .wait: break
            case .retransmit: retransmit(id)
            case .abandon: abandon(id)
            }
        }
        guard failure == nil else { return }
        if let allocatedAt, now >= allocatedAt + lifetime {
            invalidateAllocation()
            return
        }
        if let allocatedAt, now >= allocatedAt + lifetime / 2 {
            sendRefresh(lifetime: nil, now: now)
        }
        if isAllocated, let active = activeSocket, let last = lastKeepalive, now >= last + Self.keepaliveInterval,
           !isInFlight(.binding) {
            lastKeepalive = now
            sendBinding(to: active, now: now)
        }
        for (number, channel) in channels where wantsRebind(number, channel) && now >= channel.boundAt + Self.channelRefreshAge {
            sendChannelBind(channel: number, peer: channel.peer, now: now)
        }
        if isAllocated, let since = unansweredSince, now >= since + Self.silenceBeforeProbe,
           !isInFlight(.refresh(lifetime: nil)) {
            // A relay that dropped the allocation drops its ChannelData without a word (coturn after a failed
            // send to a peer, any relay after a restart); ICE would notice only at its timeout.
            unansweredSince = nil
            events.append(.probing(.channelDataUnanswered))
            sendRefresh(lifetime: nil, now: now, schedule: .probe)
        }
    }

    /// When ``handleTimeout(now:)`` should run next.
    public func pollTimeout() -> Instant? {
        guard failure == nil else { return nil }
        // A timer whose work is already in flight (or not wanted) is left out: naming an instant at which
        // handleTimeout does nothing would make an event loop spin.
        var deadlines = requests.values.map(\.transaction.deadline)
        if let allocatedAt {
            if !isInFlight(.refresh(lifetime: nil)) {
                deadlines.append(allocatedAt + lifetime / 2)
                if let since = unansweredSince { deadlines.append(since + Self.silenceBeforeProbe) }
            }
            deadlines.append(allocatedAt + lifetime)
        }
        if isAllocated, activeSocket != nil, let last = lastKeepalive, !isInFlight(.binding) {
            deadlines.append(last + Self.keepaliveInterval)
        }
        for (number, channel) in channels where wantsRebind(number, channel) {
            deadlines.append(channel.boundAt + Self.channelRefreshAge)
        }
        return deadlines.min()
    }

    /// Whether a request of `kind`'s sort (any lifetime, channel or destination) is outstanding.
    func isInFlight(_ kind: PendingRequest.Kind) -> Bool {
        requests.values.contains { request in
            switch (request.kind, kind) {
            case (.refresh, .refresh), (.binding, .binding), (.allocate, .allocate): true
            case let (.channelBind(a, _), .channelBind(b, _)): a == b
            default: false
            }
        }
    }

    /// A bound channel is refreshed only while in use (data since the last bind) and not already being bound.
    private func wantsRebind(_ number: UInt16, _ channel: Channel) -> Bool {
        channel.bound && (channel.lastReceived.map { $0 > channel.boundAt } ?? false)
            && !isInFlight(.channelBind(channel: number, peer: channel.peer))
    }

    private func abandon(_ id: TransactionId) {
        guard let request = requests.removeValue(forKey: id) else { return }
        guard let active = activeSocket else {
            // Socket selection: only when every relay address stayed silent.
            if !requests.values.contains(where: { $0.kind == .binding }), !receivedAnyResponse { fail(.noResponse) }
            return
        }
        guard request.destination.ip.version == active.ip.version else { return }
        activeSocket = nil
        invalidateAllocation()
        if !receivedAnyResponse { fail(.noResponse) }
    }

    // MARK: Channels

    /// Binds a channel to `peer` unless one is bound or in flight; buffered until the allocation exists.
    /// A peer of a family the allocation lacks is skipped. A peer whose channel expired (it carried no data, so it
    /// was not refreshed) gets the same number again: the relay keeps the pair through its cool-down and takes
    /// the bind as a refresh, where a new number for the peer would be refused until then.
    public func bindChannel(to peer: SocketAddress, now: Instant) {
        guard failure == nil else { return }
        if let number = channelByPeer[peer] {
            guard let channel = channels[number], now >= channel.boundAt + Self.channelLifetime,
                  !isInFlight(.channelBind(channel: number, peer: peer))
            else { return }
            channels[number] = Channel(peer: peer, bound: false, boundAt: now, lastReceived: nil)
            sendChannelBind(channel: number, peer: peer, now: now)
            return
        }
        guard isAllocated else {
            if !bufferedBinds.contains(peer), bufferedBinds.count < 100 { bufferedBinds.append(peer) }
            return
        }
        guard relayAddresses.contains(where: { $0.ip.version == peer.ip.version }),
              let number = freeChannelNumber(now: now)
        else { return }
        channels[number] = Channel(peer: peer, bound: false, boundAt: now, lastReceived: nil)
        channelByPeer[peer] = number
        sendChannelBind(channel: number, peer: peer, now: now)
    }

    /// The channel to send to `peer` on: bound and younger than its lifetime, or requested and still in
    /// flight (data is pipelined right behind the ChannelBind).
    public func channel(for peer: SocketAddress, now: Instant) -> UInt16? {
        guard let number = channelByPeer[peer], let channel = channels[number],
              now < channel.boundAt + Self.channelLifetime
        else { return nil }
        return number
    }

    /// Frames a payload already at `buffer + 4` for `peer`; returns where to send it, or `nil` (after asking
    /// for a ChannelBind) when no channel can carry it yet, in which case the packet is dropped.
    public func encodeChannelData(
        to peer: SocketAddress, payloadLength: Int, into buffer: UnsafeMutableRawBufferPointer, now: Instant
    ) -> (destination: SocketAddress, count: Int)? {
        guard let active = activeSocket, let number = channel(for: peer, now: now) else {
            bindChannel(to: peer, now: now)
            return nil
        }
        guard let count = try? ChannelData.writeHeader(channel: number, payloadLength: payloadLength, into: buffer) else {
            return nil
        }
        if unansweredSince == nil { unansweredSince = now }
        return (active, count)
    }

    /// Unwraps ChannelData from the relay: the peer it came from and where the payload lies, or `nil` for a
    /// frame not from our relay, malformed, or on an unknown or not yet confirmed channel.
    public func decodeChannelData(
        _ datagram: UnsafeRawBufferPointer, from source: SocketAddress, now: Instant
    ) -> (peer: SocketAddress, payload: Range<Int>)? {
        guard source == activeSocket, let (number, payload) = try? ChannelData.decode(datagram),
              let channel = channels[number], channel.bound
        else { return nil }
        channels[number]?.lastReceived = now
        unansweredSince = nil
        return (channel.peer, payload)
    }

    /// Never-used numbers first; then one whose channel saw no data since it was last bound and was bound
    /// at least 15 minutes ago.
    private func freeChannelNumber(now: Instant) -> UInt16? {
        for _ in ChannelData.channelRange {
            let candidate = nextChannel
            nextChannel = nextChannel == ChannelData.channelRange.upperBound ? ChannelData.channelRange.lowerBound : nextChannel + 1
            guard let existing = channels[candidate] else { return candidate }
            let idle = existing.lastReceived.map { $0 <= existing.boundAt } ?? true
            if idle, now >= existing.boundAt + Self.channelRecycleAge {
                channelByPeer[existing.peer] = nil
                return candidate
            }
        }
        return nil
    }
}
