import SansIO
/// A sans-IO WireGuard peer: handshakes, sessions, timers and the encryption of one peer's traffic.
///
/// Every call takes the time; nothing reads a clock. The data path writes into caller-provided buffers and
/// never allocates; encryption and decryption work in place when the packet already sits at
/// `output + 16` (encapsulate) or the output is the datagram itself (decapsulate).
///
/// ```swift
/// let identity = WireGuardIdentity(privateKey: myKey)
/// let tunnel = WireGuardTunnel(identity: identity, remotePublicKey: peerKey, presharedKey: psk,
///                              connectionIndex: 1, now: .now, unixTimeNanoseconds: unixNow)
/// switch tunnel.encapsulate(ipPacket, into: datagramBuffer, now: now) {
/// case .writeToNetwork(let count): send(datagramBuffer.prefix(count))
/// case .done: break                              // queued until the handshake completes
/// case .writeToTunnel, .error: …
/// }
/// ```
public final class WireGuardTunnel {
    /// The peer's static public key.
    public let remotePublicKey: PublicKey
    /// The 24-bit index that identifies this peer in every session index (high 24 bits).
    public let connectionIndex: UInt32

    let identity: WireGuardIdentity
    let presharedKey: SecretKey
    let staticShared: SecretKey?
    let mac1KeyForRemote: Key32
    let cookieKeyOfRemote: Key32
    let timeAnchor: Instant
    let unixNanosecondsAtAnchor: Int64
    var random: AnyRandom

    // The tunnel has one owner (the sans-IO contract), so the data path skips dynamic exclusivity checks
    // on the state it touches per packet; they cost as much as a tenth of the encryption.
    @exclusivity(unchecked) var sessions = [Session?](repeating: nil, count: WireGuardLimits.sessionSlots)
    @exclusivity(unchecked) var currentSlot: Int?
    var sessionCounter: UInt8 = 0
    @exclusivity(unchecked) var handshake: PendingHandshake?
    var handshakeAttemptStarted: Instant?
    @exclusivity(unchecked) var scheduledHandshake: Instant?
    var lastReceivedTimestamp: Tai64n?
    var cookie: (value: Mac16, receivedAt: Instant)?
    @exclusivity(unchecked) var queue: [[UInt8]] = []
    var outbox: [[UInt8]] = []
    var events: [TunnelEvent] = []

    var lastSessionEstablished: Instant
    @exclusivity(unchecked) var lastPacketSent: Instant?
    @exclusivity(unchecked) var lastDataReceived: Instant?
    @exclusivity(unchecked) var firstUnansweredSend: Instant?

    /// Called with this side's secrets of every handshake message it writes (an initiation or a response),
    /// for a key log (``WireGuardSessionSecrets``); `nil`, the default, keeps them in memory only.
    public var keyLog: ((WireGuardSessionSecrets) -> Void)?

    /// Counters for metrics and tests.
    @exclusivity(unchecked) public internal(set) var statistics = Statistics()

    /// - Parameters:
    ///   - presharedKey: Firezone's per-connection PSK; `nil` means WireGuard's all-zero key.
    ///   - connectionIndex: the 24-bit peer index (see ``SessionIndexAllocator``).
    ///   - now, unixTimeNanoseconds: the same moment on the monotonic clock and in Unix time, the anchor of
    ///     the TAI64N timestamps in initiations.
    ///   - random: jitter, ephemeral keys and cookie nonces; a seeded generator makes tests repeatable.
    public init(
        identity: WireGuardIdentity, remotePublicKey: PublicKey, presharedKey: SecretKey?, connectionIndex: UInt32,
        now: Instant, unixTimeNanoseconds: Int64,
        random: any RandomNumberGenerator = SystemRandomNumberGenerator()
    ) {
        self.identity = identity
        self.remotePublicKey = remotePublicKey
        self.presharedKey = presharedKey ?? SecretKey()
        self.connectionIndex = connectionIndex & 0xFF_FFFF
        staticShared = X25519.sharedSecret(identity.privateKey.bytes, remotePublicKey.key).map(SecretKey.init)
        mac1KeyForRemote = NoiseHandshake.mac1Key(for: remotePublicKey)
        cookieKeyOfRemote = NoiseHandshake.cookieKey(for: remotePublicKey)
        timeAnchor = now
        unixNanosecondsAtAnchor = unixTimeNanoseconds
        self.random = AnyRandom(base: random)
        lastSessionEstablished = now
    }

    /// The index of the session new packets are sent on, if any.
    public var currentSessionIndex: UInt32? {
        currentSlot.flatMap { sessions[$0]?.localIndex }
    }

    /// Whether ``encapsulate(_:into:now:)`` would encrypt a packet right now rather than queue it behind a
    /// handshake (a session exists and is young enough to send on).
    public func canSendWithoutHandshake(at now: Instant) -> Bool {
        guard let slot = currentSlot, let session = sessions[slot] else { return false }
        return session.canSend(at: now)
    }

    /// When the latest handshake completed; `nil` before the first.
    public var lastHandshake: Instant? {
        statistics.handshakesCompleted > 0 ? lastSessionEstablished : nil
    }

    /// Whether a handshake this side initiated is waiting for its response.
    public var isHandshakeInProgress: Bool { handshake != nil }

    /// The next event for the layer above, if any.
    public func pollEvent() -> TunnelEvent? {
        events.isEmpty ? nil : events.removeFirst()
    }
}

/// What a call into the tunnel asks its caller to do.
public enum TunnelOutput: Hashable, Sendable {
    /// Nothing to do.
    case done
    /// Send the first `count` bytes of the output buffer to the peer.
    case writeToNetwork(count: Int)
    /// Write `count` bytes at `offset` of the output buffer (a decrypted IP packet) to the TUN device.
    /// Data messages decrypt exactly in place, so the packet sits after the 16-byte header (offset 16).
    case writeToTunnel(offset: Int, count: Int)
    /// The input was refused; the tunnel's state is unchanged by it.
    case error(WireGuardError)
}

/// Why the tunnel refused an input. Every case is counted in ``WireGuardTunnel/statistics``.
public enum WireGuardError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidMessage(length: Int)
    case invalidMac
    case wrongPeer
    case decryptionFailed(receiverIndex: UInt32)
    case replayedTimestamp
    case duplicateCounter(receiverIndex: UInt32, counter: UInt64)
    case unknownSession(receiverIndex: UInt32)
    case expiredSession(receiverIndex: UInt32)
    case outputTooSmall(needed: Int, available: Int)
    case packetTooLarge(length: Int)
    case queueFull
    case lowOrderKey
    case connectionExpired

    public var description: String {
        switch self {
        case .invalidMessage(let length): "Not a WireGuard message (\(length) bytes)"
        case .invalidMac: "Handshake message with an invalid MAC1"
        case .wrongPeer: "Handshake initiation from a different peer key"
        case .decryptionFailed(let index): "Message for session \(hex(index)) failed to authenticate"
        case .replayedTimestamp: "Handshake initiation with a timestamp not newer than the last one"
        case let .duplicateCounter(index, counter): "Replayed or too old counter \(counter) on session \(hex(index))"
        case .unknownSession(let index): "No session with index \(hex(index))"
        case .expiredSession(let index): "Session \(hex(index)) has expired"
        case let .outputTooSmall(needed, available): "Output buffer of \(available) bytes, \(needed) needed"
        case .packetTooLarge(let length): "Packet of \(length) bytes is too large to send"
        case .queueFull: "Packet queue full while waiting for a handshake"
        case .lowOrderKey: "Peer key produces an all-zero shared secret"
        case .connectionExpired: "No session could be established in time"
        }
    }
}

/// Events for the connection layer.
public enum TunnelEvent: Hashable, Sendable {
    /// A handshake completed and a new session is in use.
    case sessionEstablished(index: UInt32)
    /// A handshake was attempted for longer than REKEY_ATTEMPT_TIME, or no session was established for
    /// 540 s: the connection has failed and every key is dropped.
    case connectionExpired
}

/// Counts of what the tunnel did, for metrics.
public struct Statistics: Hashable, Sendable {
    /// Data messages carrying a packet (keepalives not counted).
    public var packetsSent = 0
    public var packetsReceived = 0
    /// The bytes of those data messages, WireGuard's header and tag included (as `wg show` counts transfer).
    public var bytesSent = 0
    public var bytesReceived = 0
    public var keepalivesSent = 0
    public var keepalivesReceived = 0
    public var handshakeInitiationsSent = 0
    public var handshakeResponsesSent = 0
    public var handshakesCompleted = 0
    public var cookieRepliesSent = 0
    public var cookieRepliesReceived = 0
    public var packetsQueued = 0
    public var errors = 0
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
