import CSodium

/// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it (whitepaper §5.4). Each function writes or
/// reads one message and carries the chaining key and hash forward; nothing here keeps state between calls.
enum NoiseHandshake {
    static let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8)
    static let identifier = Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8)
    static let labelMac1 = Array("mac1----".utf8)
    static let labelCookie = Array("cookie--".utf8)

    /// Ci = HASH(construction); Hi = HASH(Ci || identifier).
    static let initialChainingKey: Key32 = construction.withUnsafeBytes { Blake2s.hash($0) }
    static let initialHash: Key32 = initialChainingKey.withUnsafeBytes { ck in
        identifier.withUnsafeBytes { Blake2s.hash(ck, $0) }
    }

    /// The running state of a handshake in progress.
    struct State {
        var chainingKey: Key32
        var hash: Key32

        mutating func zero() {
            chainingKey.zero()
            hash.zero()
        }

        mutating func mixHash(_ data: UnsafeRawBufferPointer) {
            hash = hash.withUnsafeBytes { Blake2s.hash($0, data) }
        }

        mutating func mixHash(_ key: Key32) {
            key.withUnsafeBytes { mixHash($0) }
        }

        /// C = KDF1(C, input).
        mutating func mixKey(_ input: Key32) {
            chainingKey = input.withUnsafeBytes { Blake2s.kdf(1, key: chainingKey, input: $0).0 }
        }

        /// (C, k) = KDF2(C, input); returns k.
        mutating func mixKeyAndDerive(_ input: Key32) -> Key32 {
            let (next, key, _) = input.withUnsafeBytes { Blake2s.kdf(2, key: chainingKey, input: $0) }
            chainingKey = next
            return key
        }
    }

    /// The state both sides start from for a responder whose static key is `responderStatic`.
    static func initialState(responderStatic: PublicKey) -> State {
        var state = State(chainingKey: initialChainingKey, hash: initialHash)
        state.mixHash(responderStatic.key)
        return state
    }

    // MARK: Initiation

    /// Writes the first 116 bytes of an initiation (everything but the MACs) and returns the state to
    /// continue with when the response arrives.
    static func writeInitiation(
        into message: UnsafeMutableRawBufferPointer, senderIndex: UInt32, ephemeral: SecretKey,
        localStatic: PublicKey, remoteStatic: PublicKey, staticShared: Key32, timestamp: Tai64n
    ) -> State? {
        var state = initialState(responderStatic: remoteStatic)
        message.storeUInt32LE(1, at: 0)
        message.storeUInt32LE(senderIndex, at: Layout.Initiation.sender)
        let ephemeralPublic = ephemeral.publicKey.key
        ephemeralPublic.withUnsafeBytes { message.slice(Layout.Initiation.ephemeral, 32).copyMemory(from: $0) }
        state.mixKey(ephemeralPublic)
        state.mixHash(ephemeralPublic)

        guard var ephemeralShared = X25519.sharedSecret(ephemeral.bytes, remoteStatic.key) else { return nil }
        var key = state.mixKeyAndDerive(ephemeralShared)
        ephemeralShared.zero()
        let encryptedStatic = message.slice(Layout.Initiation.encryptedStatic, 48)
        seal(key: &key, plaintext: localStatic.key, hash: state.hash, into: encryptedStatic)
        state.mixHash(UnsafeRawBufferPointer(encryptedStatic))

        key = state.mixKeyAndDerive(staticShared)
        let encryptedTimestamp = message.slice(Layout.Initiation.encryptedTimestamp, 28)
        var timestampBytes: (UInt64, UInt32) = (0, 0)
        withUnsafeMutableBytes(of: &timestampBytes) { timestamp.write(to: $0) }
        _ = withUnsafeBytes(of: &timestampBytes) { plaintext in
            state.hash.withUnsafeBytes { hash in
                key.withUnsafeBytes { key in
                    Aead.seal(key: key, counter: 0, plaintext: UnsafeRawBufferPointer(rebasing: plaintext[0..<12]),
                              additionalData: hash, into: encryptedTimestamp)
                }
            }
        }
        key.zero()
        state.mixHash(UnsafeRawBufferPointer(encryptedTimestamp))
        return state
    }

    /// What a responder learns from a valid initiation.
    struct ReceivedInitiation {
        var state: State
        var senderIndex: UInt32
        var initiatorStatic: PublicKey
        var initiatorEphemeral: Key32
        var timestamp: Tai64n
    }

    /// Decrypts an initiation addressed to `localStatic`; `nil` when it does not authenticate.
    static func readInitiation(
        _ message: UnsafeRawBufferPointer, localPrivate: SecretKey, localStatic: PublicKey,
        staticSharedFor: (PublicKey) -> Key32?
    ) -> ReceivedInitiation? {
        var state = initialState(responderStatic: localStatic)
        let initiatorEphemeral = Key32(message.slice(Layout.Initiation.ephemeral, 32))
        state.mixKey(initiatorEphemeral)
        state.mixHash(initiatorEphemeral)

        guard var ephemeralShared = X25519.sharedSecret(localPrivate.bytes, initiatorEphemeral) else { return nil }
        var key = state.mixKeyAndDerive(ephemeralShared)
        ephemeralShared.zero()
        let encryptedStatic = message.slice(Layout.Initiation.encryptedStatic, 48)
        var initiatorStatic = Key32()
        guard open(key: &key, ciphertext: encryptedStatic, hash: state.hash, into: &initiatorStatic) else { return nil }
        state.mixHash(encryptedStatic)

        let initiator = PublicKey(initiatorStatic)
        guard var staticShared = staticSharedFor(initiator) else { return nil }
        key = state.mixKeyAndDerive(staticShared)
        staticShared.zero()
        let encryptedTimestamp = message.slice(Layout.Initiation.encryptedTimestamp, 28)
        var timestampBytes: (UInt64, UInt64) = (0, 0)
        let opened = withUnsafeMutableBytes(of: &timestampBytes) { plaintext in
            state.hash.withUnsafeBytes { hash in
                key.withUnsafeBytes { key in
                    Aead.open(key: key, counter: 0, ciphertext: encryptedTimestamp, additionalData: hash,
                              into: plaintext)
                }
            }
        }
        key.zero()
        guard opened else { return nil }
        state.mixHash(encryptedTimestamp)
        let timestamp = withUnsafeBytes(of: &timestampBytes) { Tai64n($0) }
        return ReceivedInitiation(
            state: state, senderIndex: message.uint32LE(at: Layout.Initiation.sender),
            initiatorStatic: initiator, initiatorEphemeral: initiatorEphemeral, timestamp: timestamp)
    }

    // MARK: Response

    /// Writes the first 60 bytes of a response and returns the transport keys (sending, receiving).
    static func writeResponse(
        into message: UnsafeMutableRawBufferPointer, senderIndex: UInt32, receiverIndex: UInt32,
        state initial: State, ephemeral: SecretKey, initiatorEphemeral: Key32, initiatorStatic: PublicKey,
        presharedKey: SecretKey
    ) -> (sending: Key32, receiving: Key32)? {
        var state = initial
        defer { state.zero() }
        message.storeUInt32LE(2, at: 0)
        message.storeUInt32LE(senderIndex, at: Layout.Response.sender)
        message.storeUInt32LE(receiverIndex, at: Layout.Response.receiver)
        let ephemeralPublic = ephemeral.publicKey.key
        ephemeralPublic.withUnsafeBytes { message.slice(Layout.Response.ephemeral, 32).copyMemory(from: $0) }
        state.mixKey(ephemeralPublic)
        state.mixHash(ephemeralPublic)
        guard var sharedEE = X25519.sharedSecret(ephemeral.bytes, initiatorEphemeral),
              var sharedES = X25519.sharedSecret(ephemeral.bytes, initiatorStatic.key)
        else { return nil }
        state.mixKey(sharedEE)
        state.mixKey(sharedES)
        sharedEE.zero()
        sharedES.zero()
        var key = mixPresharedKey(&state, presharedKey)
        let encryptedNothing = message.slice(Layout.Response.encryptedNothing, 16)
        _ = state.hash.withUnsafeBytes { hash in
            key.withUnsafeBytes { key in
                Aead.seal(key: key, counter: 0, plaintext: Aead.empty,
                          additionalData: hash, into: encryptedNothing)
            }
        }
        key.zero()
        state.mixHash(UnsafeRawBufferPointer(encryptedNothing))
        let (receiving, sending, _) = Blake2s.kdf(2, key: state.chainingKey, input: UnsafeRawBufferPointer(start: nil, count: 0))
        return (sending, receiving)
    }

    /// Reads a response to our initiation; returns the transport keys (sending, receiving), or `nil` when
    /// it does not authenticate.
    static func readResponse(
        _ message: UnsafeRawBufferPointer, state initial: State, ephemeral: SecretKey, localPrivate: SecretKey,
        presharedKey: SecretKey
    ) -> (sending: Key32, receiving: Key32)? {
        var state = initial
        defer { state.zero() }
        let responderEphemeral = Key32(message.slice(Layout.Response.ephemeral, 32))
        state.mixKey(responderEphemeral)
        state.mixHash(responderEphemeral)
        guard var sharedEE = X25519.sharedSecret(ephemeral.bytes, responderEphemeral),
              var sharedSE = X25519.sharedSecret(localPrivate.bytes, responderEphemeral)
        else { return nil }
        state.mixKey(sharedEE)
        state.mixKey(sharedSE)
        sharedEE.zero()
        sharedSE.zero()
        var key = mixPresharedKey(&state, presharedKey)
        let encryptedNothing = message.slice(Layout.Response.encryptedNothing, 16)
        var nothing: UInt8 = 0
        let opened = withUnsafeMutableBytes(of: &nothing) { plaintext in
            state.hash.withUnsafeBytes { hash in
                key.withUnsafeBytes { key in
                    Aead.open(key: key, counter: 0, ciphertext: encryptedNothing, additionalData: hash,
                              into: plaintext)
                }
            }
        }
        key.zero()
        guard opened else { return nil }
        let (sending, receiving, _) = Blake2s.kdf(2, key: state.chainingKey, input: UnsafeRawBufferPointer(start: nil, count: 0))
        return (sending, receiving)
    }

    /// (C, τ, k) = KDF3(C, Q); H = HASH(H || τ); returns k.
    private static func mixPresharedKey(_ state: inout State, _ presharedKey: SecretKey) -> Key32 {
        var (next, tau, key) = Blake2s.kdf(3, key: state.chainingKey, input: presharedKey.bytes)
        state.chainingKey = next
        state.mixHash(tau)
        tau.zero()
        return key
    }

    private static func seal(key: inout Key32, plaintext: Key32, hash: Key32, into output: UnsafeMutableRawBufferPointer) {
        _ = plaintext.withUnsafeBytes { plaintext in
            hash.withUnsafeBytes { hash in
                key.withUnsafeBytes { key in
                    Aead.seal(key: key, counter: 0, plaintext: plaintext, additionalData: hash, into: output)
                }
            }
        }
        key.zero()
    }

    static func open(key: inout Key32, ciphertext: UnsafeRawBufferPointer, hash: Key32, into output: inout Key32) -> Bool {
        let opened = output.withUnsafeMutableBytes { output in
            hash.withUnsafeBytes { hash in
                key.withUnsafeBytes { key in
                    Aead.open(key: key, counter: 0, ciphertext: ciphertext, additionalData: hash, into: output)
                }
            }
        }
        key.zero()
        return opened
    }

    // MARK: MACs

    /// The key for mac1 of messages sent to `receiver`: HASH("mac1----" || receiver's static key).
    static func mac1Key(for receiver: PublicKey) -> Key32 {
        labelMac1.withUnsafeBytes { label in receiver.key.withUnsafeBytes { Blake2s.hash(label, $0) } }
    }

    /// The key for cookies sent by `sender`: HASH("cookie--" || sender's static key).
    static func cookieKey(for sender: PublicKey) -> Key32 {
        labelCookie.withUnsafeBytes { label in sender.key.withUnsafeBytes { Blake2s.hash(label, $0) } }
    }

    /// Writes mac1 (and mac2 when a cookie is known) over the message in place; returns mac1.
    @discardableResult
    static func writeMacs(_ message: UnsafeMutableRawBufferPointer, mac1Offset: Int, mac1Key: Key32, cookie: Mac16?) -> Mac16 {
        let mac1 = mac1Key.withUnsafeBytes { Blake2s.mac(key: $0, UnsafeRawBufferPointer(message.slice(0, mac1Offset))) }
        mac1.withUnsafeBytes { message.slice(mac1Offset, 16).copyMemory(from: $0) }
        let mac2Target = message.slice(mac1Offset + 16, 16)
        if let cookie {
            let mac2 = cookie.withUnsafeBytes { Blake2s.mac(key: $0, UnsafeRawBufferPointer(message.slice(0, mac1Offset + 16))) }
            mac2.withUnsafeBytes { mac2Target.copyMemory(from: $0) }
        } else {
            mac2Target.initializeMemory(as: UInt8.self, repeating: 0)
        }
        return mac1
    }
}
