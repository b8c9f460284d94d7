import SansIO
import Stun

/// One local/remote candidate pair and the history of its checks.
final class CandidatePair {
    enum State { case waiting, inProgress, succeeded, failed }

    let local: IceCandidate
    let remote: IceCandidate
    let priority: UInt64
    var state: State = .waiting
    /// Checks sent, oldest first, capped at `maxRetransmits` entries.
    var attempts: [(id: TransactionId, at: Instant, answered: Bool)] = []
    /// The controlled side: the controlling peer sent USE-CANDIDATE on this pair.
    var remoteNominated = false
    /// The controlling side: this pair's checks carry USE-CANDIDATE.
    var useCandidate = false
    /// How long the latest answered check took, request to response.
    var lastRoundTrip: Duration?

    init(local: IceCandidate, remote: IceCandidate, priority: UInt64) {
        self.local = local
        self.remote = remote
        self.priority = priority
    }

    var trailingUnanswered: Int { attempts.reversed().prefix { !$0.answered }.count }
}

extension IceAgent {
    /// Sends the checks that are due and fails pairs that went unanswered too long.
    public func handleTimeout(now: Instant) {
        lastNow = now
        for pair in pairs where pair.state != .failed {
            if hasFailed(pair, now: now) {
                pair.state = .failed
                events.append(.pairFailed(local: pair.local, remote: pair.remote))
                continue
            }
            guard now >= nextCheck(pair, now: now) else { continue }
            sendCheck(pair, now: now)
        }
        if let nominatedPair, nominatedPair.state == .failed {
            self.nominatedPair = nil
        }
        evaluateNomination(now: now)
        updateState()
    }

    /// When ``handleTimeout(now:)`` should run next: the earliest check or failure of any live pair (a new
    /// pair is due at once).
    public func pollTimeout() -> Instant? {
        var earliest: Instant?
        for pair in pairs where pair.state != .failed {
            let due = nextCheckDue(pair)
            earliest = min(earliest ?? due, due)
        }
        return earliest
    }

    /// The next check of a pair (str0m): `last attempt + resendDelay(n)`, capped at `now + maxRto`, where n is
    /// the number of attempts, or the number of trailing unanswered ones once they are older than maxRto/2.
    func nextCheck(_ pair: CandidatePair, now: Instant) -> Instant {
        guard let last = pair.attempts.last else { return now }
        var count = pair.attempts.count
        let unanswered = pair.trailingUnanswered
        if unanswered > 0, now - pair.attempts[pair.attempts.count - unanswered].at > timings.maxRto / 2 {
            count = unanswered
        }
        return min(last.at + timings.resendDelay(count), now + timings.maxRto)
    }

    /// The first moment ``nextCheck(_:now:)`` is not in the future, so that ``pollTimeout()`` never names
    /// an instant at which ``handleTimeout(now:)`` has nothing to do. Unanswered checks count on their own
    /// once the first of them is older than maxRto/2, which can bring the check forward.
    func nextCheckDue(_ pair: CandidatePair) -> Instant {
        guard let last = pair.attempts.last else { return lastNow ?? Instant(nanoseconds: .min) }
        let byCount = last.at + timings.resendDelay(pair.attempts.count)
        let capped = last.at + timings.maxRto
        let unanswered = pair.trailingUnanswered
        guard unanswered > 0 else { return min(byCount, capped) }
        let firstUnanswered = pair.attempts[pair.attempts.count - unanswered].at
        let countsOnItsOwn = firstUnanswered + timings.maxRto / 2 + .nanoseconds(1)
        let byLoss = max(countsOnItsOwn, last.at + timings.resendDelay(unanswered))
        return min(byCount, byLoss, capped)
    }

    /// Failed: at least maxRetransmits attempts, as many unanswered, and the last resend delay elapsed.
    func hasFailed(_ pair: CandidatePair, now: Instant) -> Bool {
        guard pair.attempts.count >= timings.maxRetransmits, pair.trailingUnanswered >= timings.maxRetransmits,
              let last = pair.attempts.last
        else { return false }
        return now >= last.at + timings.resendDelay(timings.maxRetransmits)
    }

    private func sendCheck(_ pair: CandidatePair, now: Instant) {
        var attributes: [StunAttribute] = [
            .username("\(remoteCredentials.ufrag):\(localCredentials.ufrag)"),
            isControlling ? .iceControlling(tieBreaker: tieBreaker) : .iceControlled(tieBreaker: tieBreaker),
            .priority(pair.local.checkPriority),
        ]
        if isControlling, pair.useCandidate { attributes.append(.useCandidate) }
        let request = StunMessage(class: .request, method: .binding, transactionId: .random(using: &random), attributes: attributes)
        transmits.append(IceTransmit(
            source: pair.local, destination: pair.remote.address,
            payload: request.encode(integrity: .sha1(key: StunKey.shortTerm(password: remoteCredentials.password)), fingerprint: true)))
        pair.attempts.append((request.transactionId, now, false))
        if pair.attempts.count > timings.maxRetransmits { pair.attempts.removeFirst() }
        if pair.state == .waiting { pair.state = .inProgress }
    }

    /// The controlling side nominates the best succeeded pair whenever it changes; the controlled side
    /// follows the best succeeded pair the peer flagged with USE-CANDIDATE. `NominatedSend` at once.
    ///
    /// The controlling side's check with USE-CANDIDATE goes out at once (a triggered check, RFC 8445 §7.3.1.4),
    /// not at the pair's next scheduled check: the controlled side uses the path only once it has seen it, so
    /// waiting for the schedule delayed a new connection's first reply by up to a check interval. Only for a
    /// pair whose last check was answered: when pairs fail one after another (the peer is gone), an extra check
    /// on each would put off the connection's failure by a resend interval per pair.
    func evaluateNomination(now: Instant?) {
        let best = pairs.first { pair in
            pair.state == .succeeded && (isControlling || pair.remoteNominated)
        }
        guard let best, best !== nominatedPair else { return }
        if isControlling {
            nominatedPair?.useCandidate = false
            best.useCandidate = true
            if let now, best.trailingUnanswered == 0 { sendCheck(best, now: now) }
        }
        nominatedPair = best
        events.append(.nominated(source: best.local, destination: best.remote.address))
    }
}
