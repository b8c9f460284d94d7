import CSodium

/// 32 bytes held inline (keys, hashes, chaining keys). Values that are secret are zeroed by their owner
/// with `zero()` when they are no longer needed; long-lived secrets live in ``SecretKey`` instead.
struct Key32: Equatable {
    var bytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init() {}

    init(_ source: UnsafeRawBufferPointer) {
        withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(32))) }
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: bytes, body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &bytes, body)
    }

    mutating func zero() {
        withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) }
    }

    var isZero: Bool {
        withUnsafeBytes { bytes in sodium_is_zero(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), 32) == 1 }
    }

    /// Constant-time comparison.
    static func == (lhs: Key32, rhs: Key32) -> Bool {
        lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in constantTimeEqual(left, right) } }
    }
}

/// A 16-byte MAC value (mac1, mac2, cookies), inline.
struct Mac16: Equatable {
    var bytes: (UInt64, UInt64) = (0, 0)

    init() {}

    init(_ source: UnsafeRawBufferPointer) {
        withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(16))) }
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: bytes, body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &bytes, body)
    }

    /// Constant-time comparison.
    static func == (lhs: Mac16, rhs: Mac16) -> Bool {
        lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in constantTimeEqual(left, right) } }
    }
}

func constantTimeEqual(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
    guard lhs.count == rhs.count else { return false }
    guard let left = lhs.baseAddress, let right = rhs.baseAddress else { return lhs.count == 0 }
    return sodium_memcmp(left, right, lhs.count) == 0
}

func secureZero(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) }
}
