/// Decrypts a captured WireGuard conversation with key log secrets (``WireGuardSessionSecrets``), as
/// Wireshark does: an initiation and its response, with the secrets of either side, give the session's two
/// transport keys; data messages to either index then open. Feed messages in capture order. Not for the data
/// path: it allocates.
public struct WireGuardDecryptor {
    /// A session whose keys were derived: the indices of both sides and which key opens data sent to each.
    public struct SessionKeys {
        public var initiatorIndex: UInt32
        public var responderIndex: UInt32
        /// Whether the secrets were the initiator's (`false`: the responder's).
        public var fromInitiator: Bool
        fileprivate var toResponder: Key32
        fileprivate var toInitiator: Key32
    }

    private let secrets: [(ephemeralPublic: PublicKey, secrets: WireGuardSessionSecrets)]
    private var initiations: [UInt32: [UInt8]] = [:]
    private var keysByReceiver: [UInt32: (key: Key32, session: Int)] = [:]
    public private(set) var sessions: [SessionKeys] = []

    /// At most this many initiations wait for a response; older ones are dropped.
    public static let pendingLimit = 1024

    public init(secrets: [WireGuardSessionSecrets]) {
        self.secrets = secrets.map { ($0.localEphemeralPrivateKey.publicKey, $0) }
    }

    /// Remembers an initiation (148 bytes) for the response that may follow.
    public mutating func addInitiation(_ message: UnsafeRawBufferPointer) {
        guard case .initiation(let sender)? = WireGuardMessage.peek(message) else { return }
        if initiations.count >= Self.pendingLimit { initiations.removeAll() }
        initiations[sender] = Array(message)
    }

    /// Derives the session's keys from a response and the initiation it answers, when the key log holds
    /// either side's secrets for it; returns the session's position in ``sessions``.
    @discardableResult
    public mutating func addResponse(_ message: UnsafeRawBufferPointer) -> Int? {
        guard case .response(let responderIndex, let initiatorIndex)? = WireGuardMessage.peek(message),
              let initiation = initiations[initiatorIndex] else { return nil }
        let derived = initiation.withUnsafeBytes { initiation in
            secrets.lazy.compactMap { entry in Self.keys(initiation, message, entry.ephemeralPublic, entry.secrets) }.first
        }
        guard let (toResponder, toInitiator, fromInitiator) = derived else { return nil }
        initiations[initiatorIndex] = nil
        sessions.append(SessionKeys(initiatorIndex: initiatorIndex, responderIndex: responderIndex, fromInitiator: fromInitiator,
                                    toResponder: toResponder, toInitiator: toInitiator))
        keysByReceiver[responderIndex] = (toResponder, sessions.count - 1)
        keysByReceiver[initiatorIndex] = (toInitiator, sessions.count - 1)
        return sessions.count - 1
    }

    /// What opening a data message gave.
    public enum Opened {
        /// The plaintext (empty for a keepalive), and the session it belongs to.
        case plaintext([UInt8], session: Int)
        /// No session with known keys has this receiver index.
        case noKeys
        /// The keys are known but the message does not authenticate.
        case failed(session: Int)
    }

    /// Opens a data message (type 4).
    public func open(_ message: UnsafeRawBufferPointer) -> Opened {
        guard case .data(let receiver, let counter)? = WireGuardMessage.peek(message) else { return .noKeys }
        guard let (key, session) = keysByReceiver[receiver] else { return .noKeys }
        let ciphertext = UnsafeRawBufferPointer(rebasing: message[WireGuardMessage.dataHeaderLength...])
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count - Aead.tagLength)
        let opened = plaintext.withUnsafeMutableBytes { output in
            key.withUnsafeBytes { Aead.open(key: $0, counter: counter, ciphertext: ciphertext, into: output) }
        }
        return opened ? .plaintext(plaintext, session: session) : .failed(session: session)
    }

    /// The two transport keys (to the responder, to the initiator) and whose secrets gave them, or `nil`
    /// when `secrets` belong to neither side of this handshake or do not authenticate it.
    private static func keys(
        _ initiation: UnsafeRawBufferPointer, _ response: UnsafeRawBufferPointer, _ ephemeralPublic: PublicKey,
        _ secrets: WireGuardSessionSecrets
    ) -> (Key32, Key32, Bool)? {
        let initiatorEphemeral = Key32(initiation.slice(Layout.Initiation.ephemeral, 32))
        let responderEphemeral = Key32(response.slice(Layout.Response.ephemeral, 32))
        if ephemeralPublic.key == initiatorEphemeral {
            guard let state = NoiseHandshake.initiatorState(
                      after: initiation, ephemeral: secrets.localEphemeralPrivateKey, localPrivate: secrets.localStaticPrivateKey,
                      remoteStatic: secrets.remoteStaticPublicKey),
                  let keys = NoiseHandshake.readResponse(
                      response, state: state, ephemeral: secrets.localEphemeralPrivateKey,
                      localPrivate: secrets.localStaticPrivateKey, presharedKey: secrets.presharedKey)
            else { return nil }
            return (keys.sending, keys.receiving, true)
        }
        guard ephemeralPublic.key == responderEphemeral else { return nil }
        let localPrivate = secrets.localStaticPrivateKey
        guard let received = NoiseHandshake.readInitiation(
                  initiation, localPrivate: localPrivate, localStatic: localPrivate.publicKey,
                  staticSharedFor: { initiator in X25519.sharedSecret(localPrivate.bytes, initiator.key) }),
              received.initiatorStatic == secrets.remoteStaticPublicKey
        else { return nil }
        // The response is deterministic given the responder's ephemeral key: writing it again gives the keys,
        // and the same bytes prove the secrets are the ones used.
        var rewritten = [UInt8](repeating: 0, count: WireGuardMessage.responseLength)
        let keys = rewritten.withUnsafeMutableBytes { output in
            NoiseHandshake.writeResponse(
                into: output, senderIndex: response.uint32LE(at: Layout.Response.sender),
                receiverIndex: response.uint32LE(at: Layout.Response.receiver), state: received.state,
                ephemeral: secrets.localEphemeralPrivateKey, initiatorEphemeral: received.initiatorEphemeral,
                initiatorStatic: received.initiatorStatic, presharedKey: secrets.presharedKey)
        }
        guard let keys, rewritten[..<Layout.Response.mac1].elementsEqual(response[..<Layout.Response.mac1]) else { return nil }
        return (keys.receiving, keys.sending, false)
    }
}

extension NoiseHandshake {
    /// The initiator's handshake state after the captured `message`, recomputed from the initiator's secrets
    /// (the ciphertexts are taken from the message, so its timestamp need not be known); `nil` when the
    /// secrets did not write it.
    static func initiatorState(
        after message: UnsafeRawBufferPointer, ephemeral: SecretKey, localPrivate: SecretKey, remoteStatic: PublicKey
    ) -> State? {
        var state = initialState(responderStatic: remoteStatic)
        let ephemeralPublic = Key32(message.slice(Layout.Initiation.ephemeral, 32))
        state.mixKey(ephemeralPublic)
        state.mixHash(ephemeralPublic)
        guard var ephemeralShared = X25519.sharedSecret(ephemeral.bytes, remoteStatic.key),
              var staticShared = X25519.sharedSecret(localPrivate.bytes, remoteStatic.key) else { return nil }
        var key = state.mixKeyAndDerive(ephemeralShared)
        ephemeralShared.zero()
        let encryptedStatic = message.slice(Layout.Initiation.encryptedStatic, 48)
        var initiatorStatic = Key32()
        guard open(key: &key, ciphertext: encryptedStatic, hash: state.hash, into: &initiatorStatic),
              initiatorStatic == localPrivate.publicKey.key else { return nil }
        state.mixHash(encryptedStatic)
        key = state.mixKeyAndDerive(staticShared)
        staticShared.zero()
        key.zero()
        state.mixHash(message.slice(Layout.Initiation.encryptedTimestamp, 28))
        return state
    }
}
