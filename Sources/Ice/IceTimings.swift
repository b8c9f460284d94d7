/// How often pairs are checked and when they fail (spec `snownet.md` §2.7): a ladder from `initialRto`
/// doubling up to `maxRto` (the steady probe interval), and failure after `maxRetransmits` unanswered checks.
public struct IceTimings: Hashable, Sendable {
    public var initialRto: Duration
    public var maxRto: Duration
    public var maxRetransmits: Int

    public init(initialRto: Duration, maxRto: Duration, maxRetransmits: Int) {
        self.initialRto = initialRto
        self.maxRto = maxRto
        self.maxRetransmits = maxRetransmits
    }

    /// Client while traffic flows: every pair every 1.5 s, ICE timeout 15.25 s.
    public static let clientDefault = IceTimings(initialRto: .milliseconds(250), maxRto: .milliseconds(1500), maxRetransmits: 12)
    /// Client while idle: every 25 s, timeout 100 s.
    public static let clientIdle = IceTimings(initialRto: .seconds(25), maxRto: .seconds(25), maxRetransmits: 4)
    /// Gateway while traffic flows: timeout 600.75 s (a gateway cannot re-dial a client).
    public static let gatewayDefault = IceTimings(initialRto: .milliseconds(250), maxRto: .seconds(15), maxRetransmits: 45)
    /// Gateway while idle: timeout 1000 s.
    public static let gatewayIdle = IceTimings(initialRto: .seconds(25), maxRto: .seconds(25), maxRetransmits: 40)

    /// The delay before check number `n` (0 for the first): `min(initialRto << min(n − 1, maxRetransmits), maxRto)`.
    public func resendDelay(_ attempt: Int) -> Duration {
        guard attempt > 0 else { return .zero }
        var delay = initialRto
        for _ in 0..<min(attempt - 1, maxRetransmits) where delay < maxRto {
            delay += delay  // `* 2` goes through Int128 and dominated every pollTimeout
        }
        return min(delay, maxRto)
    }

    /// How long a pair may go unanswered before it fails: the sum of every resend delay.
    public var iceTimeout: Duration {
        (0...maxRetransmits).reduce(Duration.zero) { $0 + resendDelay($1) }
    }
}
