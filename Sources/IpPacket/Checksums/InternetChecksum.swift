/// RFC 1071 one's-complement sums over bytes.
public enum InternetChecksum {
    /// The unfolded sum of `bytes` as big-endian 16-bit words (an odd last byte is padded with zero),
    /// added to `initial`. Fold and complement with ``finalize(_:)``.
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        var total = initial
        var index = 0
        let count = bytes.count
        // Eight bytes at a time: one's-complement sums are byte-order independent as long as the final fold
        // swaps back, so adding native 32-bit halves and byte-swapping the folded result is exact.
        var native: UInt64 = 0
        while index + 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            native &+= word & 0xFFFF_FFFF
            native &+= word >> 32
            index += 8
        }
        total &+= UInt64(fold(native).byteSwapped)
        while index + 2 <= count {
            total &+= UInt64(bytes.uint16(at: index))
            index += 2
        }
        if index < count {
            total &+= UInt64(bytes[index]) << 8
        }
        return total
    }

    /// Folds a running sum to 16 bits with end-around carries.
    public static func fold(_ sum: UInt64) -> UInt16 {
        var value = sum
        while value >> 16 != 0 {
            value = (value & 0xFFFF) + (value >> 16)
        }
        return UInt16(value)
    }

    /// The checksum field value for a running sum: folded and complemented.
    public static func finalize(_ sum: UInt64) -> UInt16 {
        ~fold(sum)
    }

    /// Whether `stored` is the correct checksum for `computed`, treating one's complement's two zeros
    /// (0x0000 and 0xFFFF) as equal, as RFC 1624 requires for incremental updates.
    public static func equivalent(_ stored: UInt16, _ computed: UInt16) -> Bool {
        stored == computed || (stored == 0 && computed == 0xFFFF) || (stored == 0xFFFF && computed == 0)
    }
}

/// An incremental checksum update (RFC 1624, eqn. 3): replace fields without re-summing the packet.
///
/// ```swift
/// var checksum = IncrementalChecksum(checksum: 0xDD2F)
/// checksum.replace(old: 0x5555, new: 0x3285)
/// checksum.finalized   // 0xFFFF
/// ```
public struct IncrementalChecksum: Sendable {
    private var sum: UInt32

    /// Starts from the checksum currently stored in the packet.
    public init(checksum: UInt16) {
        sum = UInt32(~checksum)
    }

    /// Removes `old` from the sum and adds `new`.
    @inline(__always)
    public mutating func replace(old: UInt16, new: UInt16) {
        sum += UInt32(~old) + UInt32(new)
        sum = (sum & 0xFFFF) + (sum >> 16)
    }

    /// Replaces a 32-bit field (two adjacent words).
    @inline(__always)
    public mutating func replace(old: UInt32, new: UInt32) {
        replace(old: UInt16(truncatingIfNeeded: old >> 16), new: UInt16(truncatingIfNeeded: new >> 16))
        replace(old: UInt16(truncatingIfNeeded: old), new: UInt16(truncatingIfNeeded: new))
    }

    /// Replaces a 64-bit field (four adjacent words).
    @inline(__always)
    public mutating func replace(old: UInt64, new: UInt64) {
        replace(old: UInt32(truncatingIfNeeded: old >> 32), new: UInt32(truncatingIfNeeded: new >> 32))
        replace(old: UInt32(truncatingIfNeeded: old), new: UInt32(truncatingIfNeeded: new))
    }

    /// Replaces an address field of the same version.
    @inline(__always)
    public mutating func replace(old: IpAddress, new: IpAddress) {
        switch (old, new) {
        case let (.v4(old), .v4(new)):
            replace(old: old.value, new: new.value)
        case let (.v6(old), .v6(new)):
            replace(old: old.high, new: new.high)
            replace(old: old.low, new: new.low)
        default:
            assertionFailure("every caller checks that both addresses have the same version")
        }
    }

    /// The new checksum field: complemented, with 0x0000 emitted as 0xFFFF (both verify; RFC 1624 §3).
    public var finalized: UInt16 {
        let folded = UInt16(truncatingIfNeeded: (sum & 0xFFFF) + (sum >> 16))
        let result = ~folded
        return result == 0 ? 0xFFFF : result
    }
}
