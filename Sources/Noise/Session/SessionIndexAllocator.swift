/// Hands out the 24-bit connection indices of a node (spec §4.2): a xorshift LFSR from a random non-zero
/// seed, masked, so the indices do not reveal how many peers a node has.
public struct SessionIndexAllocator {
    private let mask: UInt32
    private let seed: UInt32
    private var lfsr: UInt32
    private var exhausted = false

    public init(using random: inout some RandomNumberGenerator) {
        seed = UInt32.random(in: 1...0xFF_FFFF, using: &random)
        mask = UInt32.random(in: 0...0xFF_FFFF, using: &random)
        lfsr = seed
    }

    /// The next index, or `nil` after all 2^24 − 1 have been handed out.
    public mutating func next() -> UInt32? {
        guard !exhausted else { return nil }
        let value = (lfsr &- 1) ^ mask
        lfsr = (lfsr >> 1) ^ ((0 &- (lfsr & 1)) & 0xD8_0000)
        if lfsr == seed { exhausted = true }
        return value & 0xFF_FFFF
    }

    /// The peer a receiver index belongs to: its high 24 bits.
    public static func connectionIndex(ofReceiverIndex index: UInt32) -> UInt32 {
        index >> 8
    }
}
