/// WireGuard's protocol constants and the timer values Firezone's boringtun fork uses (spec §5.1, §5.2).
public enum WireGuardLimits {
    public static let rekeyAfterMessages: UInt64 = 1 << 60
    public static let rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
    public static let rekeyAfterTime: Duration = .seconds(120)
    public static let rejectAfterTime: Duration = .seconds(180)
    /// The initiator stops sending on a session older than this (fork change).
    public static let shouldNotUseAfterTime: Duration = .seconds(170)
    /// The initiator re-handshakes when it receives on a session older than this.
    public static let rekeyOnReceiveAfterTime: Duration = rejectAfterTime - keepaliveTimeout - rekeyTimeout
    public static let rekeyTimeout: Duration = .seconds(5)
    public static let maxJitter: Duration = .milliseconds(333)
    /// Firezone's value; boringtun's default is 90 s.
    public static let rekeyAttemptTime: Duration = .seconds(15)
    public static let keepaliveTimeout: Duration = .seconds(10)
    public static let cookieExpiration: Duration = .seconds(120)
    public static let cookieSecretRotation: Duration = .seconds(128)
    /// No new session for this long: the connection is expired and every key dropped.
    public static let connectionExpiry: Duration = rejectAfterTime * 3
    /// Packets queued while no session exists (boringtun's MAX_QUEUE_DEPTH).
    public static let maxQueuedPackets = 256
    /// Handshake messages per second across a node before MAC2 cookies are required.
    public static let handshakesPerSecond = 100
    /// Concurrent sessions per peer, addressed by the low bits of the session index.
    public static let sessionSlots = 8
}
