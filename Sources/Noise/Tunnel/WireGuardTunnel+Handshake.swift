import CSodium
import SansIO

/// A handshake this side initiated, waiting for its response. A class, so the data path's "handshake in
/// progress?" check is a pointer comparison rather than a copy of the state.
final class PendingHandshake {
    let state: NoiseHandshake.State
    let ephemeral: SecretKey
    let localIndex: UInt32
    /// MAC1 of the initiation, the associated data of a cookie reply to it.
    let mac1: Mac16
    let sentAt: Instant
    /// Jitter added to the retransmission timer of this attempt.
    let retransmitJitter: Duration

    init(state: NoiseHandshake.State, ephemeral: SecretKey, localIndex: UInt32, mac1: Mac16, sentAt: Instant,
         retransmitJitter: Duration) {
        self.state = state
        self.ephemeral = ephemeral
        self.localIndex = localIndex
        self.mac1 = mac1
        self.sentAt = sentAt
        self.retransmitJitter = retransmitJitter
    }

    deinit {
        var state = self.state
        state.zero()
    }
}

extension WireGuardTunnel {
    /// Starts a new handshake now unless one is in progress (never two at once); the initiation is queued for
    /// ``pollTransmit(into:now:)``. The connection layer calls this to roll the session. Returns whether a
    /// handshake was started.
    @discardableResult
    public func initiateHandshake(now: Instant) -> Bool {
        guard handshake == nil else { return false }
        var message = [UInt8](repeating: 0, count: WireGuardMessage.initiationLength)
        let written = message.withUnsafeMutableBytes { writeInitiation(into: $0, now: now) }
        guard written > 0 else { return false }
        outbox.append(message)
        return true
    }

    /// Writes a new initiation (fresh ephemeral key and session index) and records it as pending.
    func writeInitiation(into output: UnsafeMutableRawBufferPointer, now: Instant) -> Int {
        guard let staticShared else {
            recordError()
            return 0
        }
        let ephemeral = generateEphemeral()
        let localIndex = nextLocalIndex()
        let timestamp = Tai64n(unixNanoseconds: unixNanosecondsAtAnchor + nanoseconds(now - timeAnchor))
        guard let state = NoiseHandshake.writeInitiation(
            into: output, senderIndex: localIndex, ephemeral: ephemeral, localStatic: identity.publicKey,
            remoteStatic: remotePublicKey, staticShared: Key32(staticShared.bytes), timestamp: timestamp)
        else { return 0 }
        let validCookie = cookie.flatMap { now - $0.receivedAt < WireGuardLimits.cookieExpiration ? $0.value : nil }
        let mac1 = NoiseHandshake.writeMacs(
            output.slice(0, WireGuardMessage.initiationLength), mac1Offset: Layout.Initiation.mac1,
            mac1Key: mac1KeyForRemote, cookie: validCookie)
        handshake = PendingHandshake(state: state, ephemeral: ephemeral, localIndex: localIndex, mac1: mac1,
                                     sentAt: now, retransmitJitter: jitter())
        logSecrets(ephemeral: ephemeral)
        if handshakeAttemptStarted == nil { handshakeAttemptStarted = now }
        scheduledHandshake = nil
        lastPacketSent = now
        statistics.handshakeInitiationsSent += 1
        return WireGuardMessage.initiationLength
    }

    func handleInitiation(
        _ message: UnsafeRawBufferPointer, source: EndpointKey, into output: UnsafeMutableRawBufferPointer,
        now: Instant
    ) -> TunnelOutput {
        if let refusal = admit(message, mac1Offset: Layout.Initiation.mac1, senderOffset: Layout.Initiation.sender,
                               source: source, into: output, now: now) {
            return refusal
        }
        let staticShared = self.staticShared
        let remote = remotePublicKey
        guard let received = NoiseHandshake.readInitiation(
            message, localPrivate: identity.privateKey, localStatic: identity.publicKey,
            staticSharedFor: { $0 == remote ? staticShared.map { Key32($0.bytes) } : nil })
        else {
            let initiator = identity.initiatorPublicKey(of: message)
            return fail(initiator.map { $0 == remote } == false ? .wrongPeer : .decryptionFailed(receiverIndex: 0))
        }
        if let last = lastReceivedTimestamp, received.timestamp <= last {
            return fail(.replayedTimestamp)
        }
        let ephemeral = generateEphemeral()
        let localIndex = nextLocalIndex()
        guard let keys = NoiseHandshake.writeResponse(
            into: output, senderIndex: localIndex, receiverIndex: received.senderIndex, state: received.state,
            ephemeral: ephemeral, initiatorEphemeral: received.initiatorEphemeral,
            initiatorStatic: received.initiatorStatic, presharedKey: presharedKey)
        else { return fail(.lowOrderKey) }
        let validCookie = cookie.flatMap { now - $0.receivedAt < WireGuardLimits.cookieExpiration ? $0.value : nil }
        NoiseHandshake.writeMacs(output.slice(0, WireGuardMessage.responseLength), mac1Offset: Layout.Response.mac1,
                                 mac1Key: mac1KeyForRemote, cookie: validCookie)
        lastReceivedTimestamp = received.timestamp
        logSecrets(ephemeral: ephemeral)
        // The responder's session becomes current only when the initiator's first data message confirms it.
        install(Session(localIndex: localIndex, remoteIndex: received.senderIndex, sendingKey: keys.sending,
                        receivingKey: keys.receiving, createdAt: now, isInitiator: false), makeCurrent: false)
        lastPacketSent = now
        statistics.handshakeResponsesSent += 1
        return .writeToNetwork(count: WireGuardMessage.responseLength)
    }

    func handleResponse(
        _ message: UnsafeRawBufferPointer, receiverIndex: UInt32, source: EndpointKey,
        into output: UnsafeMutableRawBufferPointer, now: Instant
    ) -> TunnelOutput {
        guard let pending = handshake, pending.localIndex == receiverIndex else {
            return fail(.unknownSession(receiverIndex: receiverIndex))
        }
        if let refusal = admit(message, mac1Offset: Layout.Response.mac1, senderOffset: Layout.Response.sender,
                               source: source, into: output, now: now) {
            return refusal
        }
        guard let keys = NoiseHandshake.readResponse(
            message, state: pending.state, ephemeral: pending.ephemeral, localPrivate: identity.privateKey,
            presharedKey: presharedKey)
        else { return fail(.decryptionFailed(receiverIndex: receiverIndex)) }
        handshake = nil
        handshakeAttemptStarted = nil
        install(Session(localIndex: pending.localIndex, remoteIndex: message.uint32LE(at: Layout.Response.sender),
                        sendingKey: keys.sending, receivingKey: keys.receiving, createdAt: now, isInitiator: true),
                makeCurrent: true)
        // Confirm the session to the responder at once (it cannot send before our first data message).
        return encryptKeepalive(into: output, now: now)
    }

    func handleCookieReply(_ message: UnsafeRawBufferPointer, receiverIndex: UInt32) -> TunnelOutput {
        guard let pending = handshake, pending.localIndex == receiverIndex else {
            return fail(.unknownSession(receiverIndex: receiverIndex))
        }
        var value = Mac16()
        let opened = value.withUnsafeMutableBytes { plaintext in
            cookieKeyOfRemote.withUnsafeBytes { key in
                pending.mac1.withUnsafeBytes { mac1 in
                    Aead.xopen(key: key, nonce: message.slice(Layout.CookieReply.nonce, 24),
                               ciphertext: message.slice(Layout.CookieReply.encryptedCookie, 32),
                               additionalData: mac1, into: plaintext)
                }
            }
        }
        guard opened else { return fail(.decryptionFailed(receiverIndex: receiverIndex)) }
        cookie = (value, pending.sentAt)
        statistics.cookieRepliesReceived += 1
        // The retransmission timer resends the initiation, now with MAC2.
        return .done
    }

    /// MAC1, and MAC2 under load, of a handshake message: `nil` to go on, or what to answer instead (an
    /// error for a bad MAC1, a cookie reply to the message's sender when a valid MAC2 is missing).
    private func admit(
        _ message: UnsafeRawBufferPointer, mac1Offset: Int, senderOffset: Int, source: EndpointKey,
        into output: UnsafeMutableRawBufferPointer, now: Instant
    ) -> TunnelOutput? {
        switch identity.admit(message, mac1Offset: mac1Offset, source: source, now: now) {
        case .accept:
            return nil
        case .badMac1:
            return fail(.invalidMac)
        case .requireCookie:
            statistics.cookieRepliesSent += 1
            return .writeToNetwork(count: identity.writeCookieReply(
                to: message, mac1Offset: mac1Offset, senderIndex: message.uint32LE(at: senderOffset),
                source: source, now: now, rng: &random, into: output))
        }
    }

    /// Puts a session into its slot (index mod 8), releasing the one it replaces.
    func install(_ session: Session, makeCurrent: Bool) {
        let slot = Int(session.localIndex) % WireGuardLimits.sessionSlots
        if currentSlot == slot, !makeCurrent { currentSlot = nil }
        sessions[slot] = session
        if makeCurrent { makeCurrentSession(slot: slot, now: session.createdAt) }
    }

    func makeCurrentSession(slot: Int, now: Instant) {
        guard let session = sessions[slot] else { return }
        currentSlot = slot
        lastSessionEstablished = now
        statistics.handshakesCompleted += 1
        events.append(.sessionEstablished(index: session.localIndex))
    }

    /// Connection index in the high 24 bits, a session counter in the low 8 (spec §4.2).
    func nextLocalIndex() -> UInt32 {
        defer { sessionCounter &+= 1 }
        return connectionIndex << 8 | UInt32(sessionCounter)
    }

    private func logSecrets(ephemeral: SecretKey) {
        guard let keyLog else { return }
        keyLog(WireGuardSessionSecrets(localStaticPrivateKey: identity.privateKey, remoteStaticPublicKey: remotePublicKey,
                                       localEphemeralPrivateKey: ephemeral, presharedKey: presharedKey))
    }

    func generateEphemeral() -> SecretKey {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &random) }
        bytes[0] &= 248
        bytes[31] = (bytes[31] & 127) | 64
        defer { secureZero(&bytes) }
        return SecretKey(bytes: bytes) ?? SecretKey.generatePrivateKey()
    }

    func jitter() -> Duration {
        .milliseconds(Int64.random(in: 0...333, using: &random))
    }

    func fail(_ error: WireGuardError) -> TunnelOutput {
        recordError()
        return .error(error)
    }

    func recordError() {
        statistics.errors += 1
    }
}

func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}
