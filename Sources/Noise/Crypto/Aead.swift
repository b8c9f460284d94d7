import CSodium

/// The AEADs WireGuard uses: ChaCha20-Poly1305 with a counter nonce, and XChaCha20-Poly1305 for cookies.
/// Output may be the same memory as the input (in place). Each returns `false` if a buffer is missing or,
/// when opening, the tag does not verify.
enum Aead {
    static let tagLength = 16

    /// Seals `plaintext` into `output` (plaintext.count + 16 bytes). The nonce is 32 zero bits followed by
    /// `counter` in little-endian, as WireGuard specifies.
    @inline(__always) @discardableResult
    static func seal(
        key: UnsafeRawBufferPointer, counter: UInt64, plaintext: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer = empty, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard output.count >= plaintext.count + tagLength, key.count == 32,
              let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        var nonce = nonceBytes(counter)
        var sealedLength: UInt64 = 0
        return withUnsafeBytes(of: &nonce) { nonce in
            crypto_aead_chacha20poly1305_ietf_encrypt(
                out, &sealedLength, bytes(plaintext), UInt64(plaintext.count),
                bytes(additionalData), UInt64(additionalData.count), nil, bytes(nonce), bytes(key)) == 0
        }
    }

    /// Opens `ciphertext` (with its tag) into `output` (ciphertext.count − 16 bytes).
    @inline(__always)
    static func open(
        key: UnsafeRawBufferPointer, counter: UInt64, ciphertext: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer = empty, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard ciphertext.count >= tagLength, output.count >= ciphertext.count - tagLength, key.count == 32,
              let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        var nonce = nonceBytes(counter)
        var openedLength: UInt64 = 0
        return withUnsafeBytes(of: &nonce) { nonce in
            crypto_aead_chacha20poly1305_ietf_decrypt(
                out, &openedLength, nil, bytes(ciphertext), UInt64(ciphertext.count),
                bytes(additionalData), UInt64(additionalData.count), bytes(nonce), bytes(key)) == 0
        }
    }

    /// XChaCha20-Poly1305 seal with a 24-byte nonce (cookie replies).
    @discardableResult
    static func xseal(
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard output.count >= plaintext.count + tagLength, key.count == 32, nonce.count == 24,
              let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        var sealedLength: UInt64 = 0
        return crypto_aead_xchacha20poly1305_ietf_encrypt(
            out, &sealedLength, bytes(plaintext), UInt64(plaintext.count),
            bytes(additionalData), UInt64(additionalData.count), nil, bytes(nonce), bytes(key)) == 0
    }

    /// XChaCha20-Poly1305 open.
    static func xopen(
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard ciphertext.count >= tagLength, output.count >= ciphertext.count - tagLength, key.count == 32,
              nonce.count == 24, let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        var openedLength: UInt64 = 0
        return crypto_aead_xchacha20poly1305_ietf_decrypt(
            out, &openedLength, nil, bytes(ciphertext), UInt64(ciphertext.count),
            bytes(additionalData), UInt64(additionalData.count), bytes(nonce), bytes(key)) == 0
    }

    static var empty: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    /// A C pointer to the bytes; a valid dummy for empty buffers, which libsodium never reads.
    @inline(__always)
    private static func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8> {
        (buffer.baseAddress ?? UnsafeRawPointer(dummy)).assumingMemoryBound(to: UInt8.self)
    }

    private nonisolated(unsafe) static let dummy = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

    @inline(__always)
    private static func nonceBytes(_ counter: UInt64) -> (UInt32, UInt32, UInt32) {
        // Three UInt32s, not (UInt32, UInt64): a tuple with a UInt64 would be padded to put it at offset 8.
        (0, UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
    }
}

/// A type-erased random number generator that can be passed `inout` to `random(using:)`.
struct AnyRandom: RandomNumberGenerator {
    var base: any RandomNumberGenerator

    mutating func next() -> UInt64 {
        base.next()
    }
}
