import CSodium
import SansIO

/// What all peers of one node share: the static key pair, verification of MAC1 on every handshake message
/// addressed to it, and the handshake rate limiter that demands MAC2 cookies under load (spec §5.6).
///
/// One identity serves every ``WireGuardTunnel`` of a node; like them it belongs to one owner.
public final class WireGuardIdentity {
    /// The node's static private key.
    public let privateKey: SecretKey
    /// The node's static public key.
    public let publicKey: PublicKey
    let mac1Key: Key32
    let cookieEncryptionKey: Key32
    let handshakesPerSecond: Int
    private var cookieSecret = Key32()
    private var cookieSecretCreated: Instant?
    private var windowStart: Instant?
    private var handshakesInWindow = 0
    /// The MAC1 of the initiation ``screenInitiation(_:source:now:rng:into:)`` just let through: the tunnel that
    /// handles it next does not check or count it again.
    private var screenedMac1: Mac16?

    /// Counters for metrics: handshake messages dropped for a bad MAC1, and cookie replies sent.
    public private(set) var rejectedMac1Count = 0
    public private(set) var cookieRepliesSent = 0

    public init(privateKey: SecretKey, handshakesPerSecond: Int = WireGuardLimits.handshakesPerSecond) {
        Sodium.initialize()
        self.privateKey = privateKey
        publicKey = privateKey.publicKey
        mac1Key = NoiseHandshake.mac1Key(for: publicKey)
        cookieEncryptionKey = NoiseHandshake.cookieKey(for: publicKey)
        self.handshakesPerSecond = handshakesPerSecond
    }

    /// The verdict on an incoming handshake message.
    enum Admission {
        case accept
        case badMac1
        /// Under load and without a valid MAC2: answer with a cookie reply instead.
        case requireCookie
    }

    /// What a node does with a handshake initiation before it looks for the peer it comes from.
    public enum InitiationScreening: Hashable, Sendable {
        /// MAC1 is valid and the node is not under load, or MAC2 is valid: find the peer.
        case accept
        /// Not addressed to this node's key (or not an initiation): drop it.
        case badMac1
        /// Under load and without a valid MAC2: send the cookie reply of `count` bytes now in the output.
        case cookieReply(count: Int)
    }

    /// Checks an initiation's MAC1 and, past ``WireGuardLimits/handshakesPerSecond``, its MAC2, before the
    /// Diffie-Hellman that finds its initiator (spec §5.6): a flood of initiations then costs a MAC each and gets
    /// cookie replies, while peers that answer the cookie get through. The peer's ``WireGuardTunnel`` does not
    /// check or count an initiation this let through a second time.
    public func screenInitiation<R: RandomNumberGenerator>(
        _ message: UnsafeRawBufferPointer, source: EndpointKey, now: Instant, rng: inout R,
        into output: UnsafeMutableRawBufferPointer
    ) -> InitiationScreening {
        screenedMac1 = nil
        guard message.count == WireGuardMessage.initiationLength, output.count >= WireGuardMessage.cookieReplyLength,
              case .initiation = WireGuardMessage.peek(message)
        else { return .badMac1 }
        switch admit(message, mac1Offset: Layout.Initiation.mac1, source: source, now: now) {
        case .accept:
            screenedMac1 = Mac16(message.slice(Layout.Initiation.mac1, 16))
            return .accept
        case .badMac1:
            return .badMac1
        case .requireCookie:
            return .cookieReply(count: writeCookieReply(
                to: message, mac1Offset: Layout.Initiation.mac1, senderIndex: message.uint32LE(at: Layout.Initiation.sender),
                source: source, now: now, rng: &rng, into: output))
        }
    }

    /// Checks MAC1 and, under load, MAC2 of an initiation or response addressed to this node.
    func admit(_ message: UnsafeRawBufferPointer, mac1Offset: Int, source: EndpointKey, now: Instant) -> Admission {
        let mac1 = Mac16(message.slice(mac1Offset, 16))
        if let screened = screenedMac1, mac1Offset == Layout.Initiation.mac1, screened == mac1 {
            screenedMac1 = nil
            return .accept
        }
        let expectedMac1 = mac1Key.withUnsafeBytes { Blake2s.mac(key: $0, message.slice(0, mac1Offset)) }
        guard expectedMac1 == mac1 else {
            rejectedMac1Count += 1
            return .badMac1
        }
        if let start = windowStart, now - start < .seconds(1) {
            handshakesInWindow += 1
        } else {
            windowStart = now
            handshakesInWindow = 1
        }
        guard handshakesInWindow > handshakesPerSecond else { return .accept }
        let cookie = currentCookie(for: source, now: now)
        let expectedMac2 = cookie.withUnsafeBytes { Blake2s.mac(key: $0, message.slice(0, mac1Offset + 16)) }
        return expectedMac2 == Mac16(message.slice(mac1Offset + 16, 16)) ? .accept : .requireCookie
    }

    /// Writes a 64-byte cookie reply to `message` (whose sender index it answers) into `output`.
    func writeCookieReply<R: RandomNumberGenerator>(
        to message: UnsafeRawBufferPointer, mac1Offset: Int, senderIndex: UInt32, source: EndpointKey,
        now: Instant, rng: inout R, into output: UnsafeMutableRawBufferPointer
    ) -> Int {
        output.storeUInt32LE(3, at: 0)
        output.storeUInt32LE(senderIndex, at: Layout.CookieReply.receiver)
        let nonce = output.slice(Layout.CookieReply.nonce, 24)
        for index in 0..<24 { nonce[index] = UInt8.random(in: 0...255, using: &rng) }
        let cookie = currentCookie(for: source, now: now)
        _ = cookie.withUnsafeBytes { cookie in
            cookieEncryptionKey.withUnsafeBytes { key in
                Aead.xseal(key: key, nonce: UnsafeRawBufferPointer(nonce), plaintext: cookie,
                           additionalData: message.slice(mac1Offset, 16),
                           into: output.slice(Layout.CookieReply.encryptedCookie, 32))
            }
        }
        cookieRepliesSent += 1
        return WireGuardMessage.cookieReplyLength
    }

    /// τ = MAC(Rm, source), with the secret Rm replaced every 128 s.
    private func currentCookie(for source: EndpointKey, now: Instant) -> Mac16 {
        if cookieSecretCreated.map({ now - $0 >= WireGuardLimits.cookieSecretRotation }) ?? true {
            cookieSecret.withUnsafeMutableBytes { secret in secret.baseAddress.map { randombytes_buf($0, secret.count) } }
            cookieSecretCreated = now
        }
        return cookieSecret.withUnsafeBytes { secret in source.withUnsafeBytes { Blake2s.mac(key: secret, $0) } }
    }

    /// The initiator's static key of an initiation addressed to this node, for finding the peer it belongs
    /// to before any tunnel state is touched (WireGuard's "anonymous" parse). `nil` when it does not decrypt.
    public func initiatorPublicKey(of initiation: UnsafeRawBufferPointer) -> PublicKey? {
        guard case .initiation = WireGuardMessage.peek(initiation) else { return nil }
        return NoiseHandshake.readInitiation(
            initiation, localPrivate: privateKey, localStatic: publicKey,
            staticSharedFor: { X25519.sharedSecret(self.privateKey.bytes, $0.key) }
        )?.initiatorStatic
    }
}
