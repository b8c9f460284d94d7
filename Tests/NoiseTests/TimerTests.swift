@testable import Noise
import SansIO
import Testing

/// Every timer of spec §5.2, on a virtual clock.
@Suite struct TimerTests {
    /// A pair with an established session (alice initiated).
    func established() -> TunnelPair {
        let pair = TunnelPair()
        let (_, initiation) = pair.send([0x45, 1, 2, 3], from: pair.alice)
        pair.exchange([initiation], from: pair.alice)
        _ = pair.alice.pollEvent()
        _ = pair.bob.pollEvent()
        return pair
    }

    @Test func unansweredInitiationIsRetransmittedAfterRekeyTimeoutWithJitter() {
        let pair = TunnelPair()
        let (_, first) = pair.send([1], from: pair.alice)
        pair.advance(.seconds(5))
        pair.alice.handleTimeout(now: pair.now)
        let early = pair.drain(pair.alice)
        pair.advance(.milliseconds(334))
        pair.alice.handleTimeout(now: pair.now)
        let retransmitted = pair.drain(pair.alice)
        #expect(early.isEmpty || early.count == 1, "jitter is at most 333 ms")
        let resent = early + retransmitted
        #expect(resent.count == 1)
        #expect(resent.first?.count == 148)
        #expect(resent.first.map { Array($0[4..<8]) } != Array(first[4..<8]), "a new sender index")
    }

    @Test func handshakeGivesUpAfterRekeyAttemptTime() {
        let pair = TunnelPair()
        _ = pair.send([1], from: pair.alice)
        var initiations = 1
        while pair.now - pair.start < .seconds(15) {
            guard let deadline = pair.alice.pollTimeout() else { break }
            pair.now = deadline
            pair.alice.handleTimeout(now: pair.now)
            initiations += pair.drain(pair.alice).count
        }
        #expect(pair.alice.pollEvent() == .connectionExpired)
        #expect(pair.alice.queuedPacketCount == 0, "the queue is dropped")
        #expect((3...4).contains(initiations), "every 5 s + jitter for 15 s")
        #expect(!pair.alice.isHandshakeInProgress)
    }

    @Test func neverTwoHandshakesAtOnce() {
        let pair = TunnelPair()
        #expect(pair.alice.initiateHandshake(now: pair.now))
        #expect(!pair.alice.initiateHandshake(now: pair.now))
        let (result, _) = pair.send([1], from: pair.alice)
        #expect(result == .done, "queued behind the pending handshake, no second initiation")
    }

    @Test func passiveKeepaliveAfterReceivingWithoutSending() {
        let pair = established()
        pair.advance(.seconds(1))
        let (_, datagram) = pair.send([0x45, 9], from: pair.alice)
        #expect(pair.receive(datagram, on: pair.bob).0 == .writeToTunnel(offset: 16, count: 2))
        pair.advance(.seconds(9))
        pair.bob.handleTimeout(now: pair.now)
        #expect(pair.drain(pair.bob).isEmpty)
        pair.advance(.seconds(1))
        pair.bob.handleTimeout(now: pair.now)
        let keepalives = pair.drain(pair.bob)
        #expect(keepalives.map(\.count) == [32])
        #expect(pair.receive(keepalives[0], on: pair.alice).0 == .done)
        #expect(pair.alice.statistics.keepalivesReceived >= 1)
    }

    @Test func sentDataUnansweredForFifteenSecondsStartsAHandshake() {
        let pair = established()
        _ = pair.send([0x45, 1], from: pair.alice)
        pair.advance(.seconds(14))
        pair.alice.handleTimeout(now: pair.now)
        #expect(pair.drain(pair.alice).isEmpty)
        pair.advance(.seconds(1))
        pair.alice.handleTimeout(now: pair.now)
        #expect(pair.drain(pair.alice).map(\.count) == [148])
    }

    @Test func initiatorRekeysAfterRekeyAfterTimeWhenSending() {
        let pair = established()
        pair.advance(.seconds(120))
        let (result, _) = pair.send([0x45, 1], from: pair.alice)
        #expect(result == .writeToNetwork(count: 34), "the old session still sends")
        pair.advance(.milliseconds(334))
        pair.alice.handleTimeout(now: pair.now)
        #expect(pair.drain(pair.alice).map(\.count) == [148])
    }

    @Test func responderDoesNotRekeyOnAge() {
        let pair = established()
        pair.advance(.seconds(150))
        _ = pair.send([0x45, 1], from: pair.bob)
        pair.advance(.seconds(1))
        pair.bob.handleTimeout(now: pair.now)
        #expect(pair.drain(pair.bob).filter { $0.count == 148 }.isEmpty)
    }

    @Test func initiatorStopsSendingOnSessionsOlderThan170Seconds() {
        let pair = established()
        pair.advance(.seconds(170))
        let (result, message) = pair.send([0x45, 1], from: pair.alice)
        #expect(result == .writeToNetwork(count: 148), "queued; a handshake starts instead")
        #expect(message.count == 148)
        #expect(pair.alice.queuedPacketCount == 1)
    }

    /// What Node asks before it sends a Goodbye on a closing connection (Fuzz/TunnelProto's first finding: the
    /// Goodbye was queued behind a handshake whose answer then met a connection that was gone).
    @Test func canSendWithoutHandshakeFollowsTheSessionsAge() {
        let pair = established()
        #expect(pair.alice.canSendWithoutHandshake(at: pair.now) && pair.bob.canSendWithoutHandshake(at: pair.now))
        pair.advance(.seconds(170))
        #expect(!pair.alice.canSendWithoutHandshake(at: pair.now), "the initiator stops at 165 s")
        #expect(pair.bob.canSendWithoutHandshake(at: pair.now), "the responder may send until 180 s")
        let (result, _) = pair.send([0x45, 1], from: pair.alice)
        #expect(result == .writeToNetwork(count: 148), "encapsulate agrees: a handshake instead of the packet")
    }

    @Test func initiatorRekeysOnReceiveAfter165Seconds() {
        let pair = established()
        pair.advance(.seconds(165))
        let (_, datagram) = pair.send([0x45, 1], from: pair.bob)
        #expect(pair.receive(datagram, on: pair.alice).0 == .writeToTunnel(offset: 16, count: 2))
        pair.advance(.milliseconds(334))
        pair.alice.handleTimeout(now: pair.now)
        #expect(pair.drain(pair.alice).map(\.count) == [148])
    }

    @Test func sessionsAreRejectedAfter180Seconds() {
        let pair = established()
        let index = pair.bob.currentSessionIndex
        pair.advance(.seconds(179))
        let (_, late) = pair.send([0x45, 1], from: pair.bob)
        pair.advance(.seconds(1))
        let (result, _) = pair.receive(late, on: pair.alice)
        guard case .error(.expiredSession) = result else {
            Issue.record("expected an expired session, got \(result)")
            return
        }
        pair.bob.handleTimeout(now: pair.now)
        #expect(pair.bob.currentSessionIndex == nil && index != nil)
    }

    @Test func connectionExpiresWithoutANewSessionFor540Seconds() {
        let pair = established()
        pair.advance(.seconds(540))
        pair.bob.handleTimeout(now: pair.now)
        #expect(pair.bob.pollEvent() == .connectionExpired)
    }

    /// Regression (found by the tunnel's long-idle simulation): once the sessions were dropped at 180 s the
    /// 540 s expiry was no longer armed, so an idle connection lived on until its first packet.
    @Test func idleConnectionExpiresOnItsOwnTimerAfter540Seconds() {
        let pair = established()
        var expired = false
        while !expired, let deadline = pair.bob.pollTimeout(), deadline <= pair.start + .seconds(600) {
            pair.now = max(pair.now, deadline)
            pair.bob.handleTimeout(now: pair.now)
            _ = pair.drain(pair.bob)
            expired = pair.bob.pollEvent() == .connectionExpired
        }
        #expect(expired)
        #expect(pair.now - pair.start >= .seconds(540) && pair.now - pair.start < .seconds(541))
    }

    @Test func pollTimeoutNamesTheEarliestDeadline() {
        let pair = established()
        pair.advance(.seconds(1))
        let (_, datagram) = pair.send([0x45, 1], from: pair.alice)
        _ = pair.receive(datagram, on: pair.bob)
        #expect(pair.bob.pollTimeout() == pair.now + .seconds(10), "the passive keepalive comes first")
        #expect(pair.alice.pollTimeout() == pair.now + .seconds(15), "alice: unanswered-send rekey")
    }

    @Test func counterExhaustionRekeysThenStopsSending() throws {
        let pair = established()
        let slot = try #require(pair.alice.currentSlot)
        let session = try #require(pair.alice.sessions[slot])
        session.sendingCounter = WireGuardLimits.rekeyAfterMessages
        #expect(pair.send([0x45, 1], from: pair.alice).0 == .writeToNetwork(count: 34))
        #expect(pair.alice.scheduledHandshake != nil, "REKEY_AFTER_MESSAGES schedules a handshake")
        session.sendingCounter = WireGuardLimits.rejectAfterMessages
        let (result, _) = pair.send([0x45, 1], from: pair.alice)
        #expect(result != .writeToNetwork(count: 34), "REJECT_AFTER_MESSAGES: the session no longer encrypts")
        #expect(pair.alice.queuedPacketCount == 1)
    }
}
