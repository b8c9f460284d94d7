

/// A "random" generator that plays back bytes: each draw takes the next byte, so a fuzzer's input decides
/// every choice positionally (byte n is roughly the n-th decision) and mutating a byte changes one decision.
/// Once the bytes run out every draw is all ones, which Swift's bounded sampling always accepts, so drawing
/// never loops.
public struct FuzzedChoices: RandomNumberGenerator {
    private let bytes: [UInt8]
    private var position = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public mutating func next() -> UInt64 {
        guard position < bytes.count else { return .max }
        defer { position += 1 }
        return UInt64(bytes[position]) &* 0x0101_0101_0101_0101
    }
}
