import CLibcrypto

/// ChaCha20-Poly1305 under one transport key with WireGuard's counter nonce: the data path's AEAD.
///
/// It runs on OpenSSL's EVP with a context set up once per key, whose assembly seals 1.2× and opens 1.3× faster
/// than libsodium on this project's machine (BENCHMARKS.md, "AEAD"). Where OpenSSL refuses the cipher (a
/// FIPS-only configuration has no ChaCha20-Poly1305) it falls back to libsodium, so a session always works.
/// Seal and open work in place (output at the input's address) and allocate nothing.
struct TransportCipher: ~Copyable {
    /// The EVP context holding the expanded key; `nil` when OpenSSL refused the cipher.
    private let context: OpaquePointer?
    private let key: SecretKey
    private let sealing: Bool

    /// A cipher that only seals (`sealing`) or only opens with `key`.
    init(key: SecretKey, sealing: Bool) {
        self.key = key
        self.sealing = sealing
        context = Self.makeContext(key: key, sealing: sealing)
    }

    deinit {
        // EVP_CIPHER_CTX_free cleanses the key schedule before releasing it.
        if let context { EVP_CIPHER_CTX_free(context) }
    }

    /// Whether OpenSSL carries this cipher (false means libsodium does).
    var usesOpenSSL: Bool { context != nil }

    /// Seals `plaintext` into `output` (plaintext.count + 16 bytes) with the nonce of `counter`.
    @inline(__always)
    func seal(counter: UInt64, plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let context else {
            return Aead.seal(key: key.bytes, counter: counter, plaintext: plaintext, into: output)
        }
        guard sealing, output.count >= plaintext.count + Aead.tagLength, plaintext.count <= Int(Int32.max),
              let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        var nonce = Self.nonce(counter)
        var written: Int32 = 0
        let started = withUnsafeBytes(of: &nonce) { nonce in
            EVP_EncryptInit_ex(context, nil, nil, nil, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1
        }
        guard started else { return false }
        if let input = plaintext.baseAddress, plaintext.count > 0 {
            guard EVP_EncryptUpdate(context, out, &written, input.assumingMemoryBound(to: UInt8.self),
                                    Int32(plaintext.count)) == 1, Int(written) == plaintext.count
            else { return false }
        }
        var finalWritten: Int32 = 0
        return EVP_EncryptFinal_ex(context, out + plaintext.count, &finalWritten) == 1
            && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Aead.tagLength), out + plaintext.count) == 1
    }

    /// Opens `ciphertext` (with its 16-byte tag) into `output` (ciphertext.count − 16 bytes); `false` when the
    /// tag does not verify.
    @inline(__always)
    func open(counter: UInt64, ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let context else {
            return Aead.open(key: key.bytes, counter: counter, ciphertext: ciphertext, into: output)
        }
        let count = ciphertext.count - Aead.tagLength
        guard !sealing, count >= 0, output.count >= count, count <= Int(Int32.max),
              let input = ciphertext.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        var nonce = Self.nonce(counter)
        var written: Int32 = 0
        let started = withUnsafeBytes(of: &nonce) { nonce in
            EVP_DecryptInit_ex(context, nil, nil, nil, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1
        }
        guard started else { return false }
        if count > 0 {
            guard EVP_DecryptUpdate(context, out, &written, input, Int32(count)) == 1, Int(written) == count
            else { return false }
        }
        // The tag is read before the final step, which compares it in constant time.
        let tag = UnsafeMutableRawPointer(mutating: input + count)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Aead.tagLength), tag) == 1 else { return false }
        var finalWritten: Int32 = 0
        return EVP_DecryptFinal_ex(context, out + count, &finalWritten) == 1
    }

    private static func makeContext(key: SecretKey, sealing: Bool) -> OpaquePointer? {
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        let keyBytes = key.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let initialised = sealing
            ? EVP_EncryptInit_ex(context, EVP_chacha20_poly1305(), nil, keyBytes, nil)
            : EVP_DecryptInit_ex(context, EVP_chacha20_poly1305(), nil, keyBytes, nil)
        guard initialised == 1 else {
            EVP_CIPHER_CTX_free(context)
            return nil
        }
        return context
    }

    /// 32 zero bits, then the counter in little-endian (WireGuard's nonce).
    @inline(__always)
    private static func nonce(_ counter: UInt64) -> (UInt32, UInt32, UInt32) {
        (0, UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
    }
}
