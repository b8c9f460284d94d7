import SansIO
/// One WireGuard session: the ciphers of the two transport keys of a completed handshake, the sending counter
/// and the receiving replay window. Keys are zeroed when the session is released.
final class Session {
    let localIndex: UInt32
    let remoteIndex: UInt32
    let sealer: TransportCipher
    let opener: TransportCipher
    let createdAt: Instant
    /// Whether this side sent the initiation; only the initiator rekeys on age.
    let isInitiator: Bool
    @exclusivity(unchecked) var sendingCounter: UInt64 = 0
    @exclusivity(unchecked) var replayWindow = ReplayWindow()

    init(localIndex: UInt32, remoteIndex: UInt32, sendingKey: Key32, receivingKey: Key32,
         createdAt: Instant, isInitiator: Bool) {
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        sealer = TransportCipher(key: SecretKey(sendingKey), sealing: true)
        opener = TransportCipher(key: SecretKey(receivingKey), sealing: false)
        self.createdAt = createdAt
        self.isInitiator = isInitiator
    }

    func age(at now: Instant) -> Duration { now - createdAt }

    /// Whether this session may still encrypt: young enough and counters left.
    func canSend(at now: Instant) -> Bool {
        let limit = isInitiator ? WireGuardLimits.shouldNotUseAfterTime : WireGuardLimits.rejectAfterTime
        return age(at: now) < limit && sendingCounter < WireGuardLimits.rejectAfterMessages
    }

    func canReceive(at now: Instant) -> Bool {
        age(at: now) < WireGuardLimits.rejectAfterTime
    }
}
