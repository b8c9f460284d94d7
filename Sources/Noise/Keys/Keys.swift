import CSodium

/// A Curve25519 public key (32 bytes), as `wg pubkey` prints it in base64.
public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
    var key: Key32

    init(_ key: Key32) {
        self.key = key
    }

    /// The key from its 32 raw bytes; `nil` for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        let array = Array(bytes)
        key = array.withUnsafeBytes { Key32($0) }
    }

    /// The key from WireGuard's base64 text (44 characters); `nil` when it is not exactly 32 bytes of base64.
    public init?(base64 text: String) {
        guard let bytes = Base64.decode(text), bytes.count == 32 else { return nil }
        self.init(bytes: bytes)
    }

    /// The raw 32 bytes.
    public var bytes: [UInt8] { key.withUnsafeBytes { Array($0) } }

    /// WireGuard's base64 form.
    public var base64: String { key.withUnsafeBytes { Base64.encode($0) } }

    public var description: String { base64 }

    public func hash(into hasher: inout Hasher) {
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// A secret of 32 bytes (a private key or a preshared key), kept on the heap and zeroed when released.
/// It never prints: `description` is redacted.
public final class SecretKey: @unchecked Sendable, CustomStringConvertible {
    private let pointer: UnsafeMutablePointer<UInt8>
    var storage: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: 32) }

    /// A fresh random key from libsodium's CSPRNG, clamped for use as a Curve25519 private key.
    public static func generatePrivateKey() -> SecretKey {
        Sodium.initialize()
        let key = SecretKey()
        randombytes_buf(key.pointer, 32)
        key.clamp()
        return key
    }

    /// A private or preshared key from its 32 raw bytes; `nil` for any other length.
    public convenience init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.init()
        storage.copyBytes(from: bytes)
    }

    /// A key from WireGuard's base64 text (what `wg genkey` and `wg genpsk` print).
    public convenience init?(base64 text: String) {
        guard var bytes = Base64.decode(text) else { return nil }
        defer { secureZero(&bytes) }
        self.init(bytes: bytes)
    }

    init() {
        pointer = .allocate(capacity: 32)
        pointer.initialize(repeating: 0, count: 32)
    }

    init(_ key: Key32) {
        pointer = .allocate(capacity: 32)
        pointer.initialize(repeating: 0, count: 32)
        key.withUnsafeBytes { storage.copyMemory(from: $0) }
    }

    deinit {
        sodium_memzero(pointer, 32)
        pointer.deallocate()
    }

    /// The Curve25519 public key of this private key.
    public var publicKey: PublicKey {
        var output = Key32()
        output.withUnsafeMutableBytes { out in
            guard let out = out.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
            _ = crypto_scalarmult_curve25519_base(out, pointer)
        }
        return PublicKey(output)
    }

    /// WireGuard's base64 form. Only for writing a key file: secrets never go to logs.
    public var base64: String { Base64.encode(UnsafeRawBufferPointer(storage)) }

    public var description: String { "SecretKey(redacted)" }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage) }

    private func clamp() {
        storage[0] &= 248
        storage[31] = (storage[31] & 127) | 64
    }
}

/// Curve25519 Diffie-Hellman.
enum X25519 {
    /// DH(private, public); `nil` when the result is all zeros (a low-order public key), which WireGuard rejects.
    static func sharedSecret(_ privateKey: UnsafeRawBufferPointer, _ publicKey: Key32) -> Key32? {
        var output = Key32()
        let status = output.withUnsafeMutableBytes { out in
            publicKey.withUnsafeBytes { pub -> Int32 in
                guard let out = out.baseAddress?.assumingMemoryBound(to: UInt8.self),
                      let secret = privateKey.baseAddress?.assumingMemoryBound(to: UInt8.self), privateKey.count == 32,
                      let pub = pub.baseAddress?.assumingMemoryBound(to: UInt8.self)
                else { return -1 }
                return crypto_scalarmult_curve25519(out, secret, pub)
            }
        }
        guard status == 0, !output.isZero else { return nil }
        return output
    }
}
