import CBlake2

/// WireGuard's hash functions on BLAKE2s (libb2): HASH, MAC, HMAC and the HKDF built on it.
enum Blake2s {
    static let hashLength = 32
    static let macLength = 16
    private static let blockLength = 64

    /// HASH(input): unkeyed BLAKE2s-256.
    static func hash(_ parts: UnsafeRawBufferPointer...) -> Key32 {
        var state = blake2s_state()
        blake2s_init(&state, hashLength)
        for part in parts { blake2s_update(&state, part.baseAddress, part.count) }
        var output = Key32()
        output.withUnsafeMutableBytes { _ = blake2s_final(&state, $0.baseAddress, hashLength) }
        return output
    }

    /// MAC(key, input): keyed BLAKE2s with a 16-byte output.
    static func mac(key: UnsafeRawBufferPointer, _ input: UnsafeRawBufferPointer) -> Mac16 {
        var output = Mac16()
        output.withUnsafeMutableBytes { out in
            _ = blake2s(out.baseAddress, input.baseAddress, key.baseAddress, macLength, input.count, key.count)
        }
        return output
    }

    /// HMAC-BLAKE2s (RFC 2104 with a 64-byte block) with a 32-byte key and output.
    static func hmac(key: Key32, _ parts: UnsafeRawBufferPointer...) -> Key32 {
        var innerPad = [UInt8](repeating: 0x36, count: blockLength)
        var outerPad = [UInt8](repeating: 0x5c, count: blockLength)
        key.withUnsafeBytes { key in
            for index in 0..<key.count {
                innerPad[index] ^= key[index]
                outerPad[index] ^= key[index]
            }
        }
        defer {
            secureZero(&innerPad)
            secureZero(&outerPad)
        }
        var state = blake2s_state()
        blake2s_init(&state, hashLength)
        innerPad.withUnsafeBytes { _ = blake2s_update(&state, $0.baseAddress, $0.count) }
        for part in parts { blake2s_update(&state, part.baseAddress, part.count) }
        var inner = Key32()
        inner.withUnsafeMutableBytes { _ = blake2s_final(&state, $0.baseAddress, hashLength) }
        defer { inner.zero() }
        return inner.withUnsafeBytes { inner in
            outerPad.withUnsafeBytes { outer in hash(outer, inner) }
        }
    }

    /// KDF_n(key, input) of the WireGuard paper: HKDF with HMAC-BLAKE2s, returning `count` (1–3) outputs.
    static func kdf(_ count: Int, key: Key32, input: UnsafeRawBufferPointer) -> (Key32, Key32, Key32) {
        var secret = hmac(key: key, input)
        defer { secret.zero() }
        var one: UInt8 = 1
        let first = withUnsafeBytes(of: &one) { hmac(key: secret, $0) }
        guard count > 1 else { return (first, Key32(), Key32()) }
        var two: UInt8 = 2
        let second = first.withUnsafeBytes { previous in
            withUnsafeBytes(of: &two) { hmac(key: secret, previous, $0) }
        }
        guard count > 2 else { return (first, second, Key32()) }
        var three: UInt8 = 3
        let third = second.withUnsafeBytes { previous in
            withUnsafeBytes(of: &three) { hmac(key: secret, previous, $0) }
        }
        return (first, second, third)
    }
}
