import SansIO
extension WireGuardTunnel {
    /// Runs every timer that is due (spec §5.2): handshake retransmission and give-up, scheduled rekeys,
    /// session expiry, the 540 s connection expiry, passive keepalives, and the rekey after sent data went
    /// unanswered. Messages it produces come out of ``pollTransmit(into:now:)``; expiry is an event.
    public func handleTimeout(now: Instant) {
        if let started = handshakeAttemptStarted, now - started >= WireGuardLimits.rekeyAttemptTime {
            expireConnection()
            return
        }
        // As boringtun: counted from the last session (or the tunnel's creation) whether or not a session is
        // left, so an idle connection is given up after 540 s on both sides, not discovered dead on next use.
        if now - lastSessionEstablished >= WireGuardLimits.connectionExpiry {
            expireConnection()
            return
        }
        dropExpiredSessions(now: now)
        if let pending = handshake, now >= pending.sentAt + WireGuardLimits.rekeyTimeout + pending.retransmitJitter {
            handshake = nil
            initiateHandshake(now: now)
        }
        if let scheduled = scheduledHandshake, now >= scheduled, handshake == nil {
            scheduledHandshake = nil
            initiateHandshake(now: now)
        }
        if let deadline = unansweredDeadline, now >= deadline {
            firstUnansweredSend = nil
            if handshake == nil { initiateHandshake(now: now) }
        }
        if let deadline = keepaliveDeadline, now >= deadline {
            var keepalive = [UInt8](repeating: 0, count: WireGuardMessage.dataOverhead)
            let output = keepalive.withUnsafeMutableBytes { encryptKeepalive(into: $0, now: now) }
            if case .writeToNetwork = output { outbox.append(keepalive) }
            lastDataReceived = nil
        }
    }

    /// When ``handleTimeout(now:)`` should run next, or `nil` when no timer is armed.
    public func pollTimeout() -> Instant? {
        var deadlines: [Instant] = []
        if let started = handshakeAttemptStarted { deadlines.append(started + WireGuardLimits.rekeyAttemptTime) }
        if let pending = handshake {
            deadlines.append(pending.sentAt + WireGuardLimits.rekeyTimeout + pending.retransmitJitter)
        }
        if let scheduled = scheduledHandshake { deadlines.append(scheduled) }
        if let deadline = unansweredDeadline { deadlines.append(deadline) }
        if let deadline = keepaliveDeadline { deadlines.append(deadline) }
        for session in sessions.compactMap({ $0 }) {
            deadlines.append(session.createdAt + WireGuardLimits.rejectAfterTime)
        }
        deadlines.append(lastSessionEstablished + WireGuardLimits.connectionExpiry)
        return deadlines.min()
    }

    /// Passive keepalive: data arrived and nothing was sent back within KEEPALIVE_TIMEOUT.
    private var keepaliveDeadline: Instant? {
        guard let received = lastDataReceived else { return nil }
        if let sent = lastPacketSent, sent >= received { return nil }
        return received + WireGuardLimits.keepaliveTimeout
    }

    /// Sent data unanswered for KEEPALIVE + REKEY_TIMEOUT, counted from the first unanswered packet.
    private var unansweredDeadline: Instant? {
        firstUnansweredSend.map { $0 + WireGuardLimits.keepaliveTimeout + WireGuardLimits.rekeyTimeout }
    }

    private func dropExpiredSessions(now: Instant) {
        for slot in sessions.indices {
            guard let session = sessions[slot], !session.canReceive(at: now) else { continue }
            sessions[slot] = nil
            if currentSlot == slot { currentSlot = nil }
        }
    }

    /// Gives up: drops every session, the pending handshake and the queue, and tells the layer above.
    private func expireConnection() {
        sessions = [Session?](repeating: nil, count: WireGuardLimits.sessionSlots)
        currentSlot = nil
        handshake = nil
        handshakeAttemptStarted = nil
        scheduledHandshake = nil
        firstUnansweredSend = nil
        lastDataReceived = nil
        queue.removeAll()
        outbox.removeAll()
        events.append(.connectionExpired)
    }
}
