/// A TAI64N timestamp (12 bytes, big-endian seconds with the 2^62 offset, then nanoseconds), the
/// initiation's replay protection: a responder accepts only timestamps greater than the last one.
struct Tai64n: Comparable {
    var seconds: UInt64
    var nanoseconds: UInt32

    /// TAI64N for a Unix time in nanoseconds. (WireGuard ignores leap seconds, as do its peers.)
    init(unixNanoseconds: Int64) {
        let clamped = max(0, unixNanoseconds)
        seconds = 0x4000_0000_0000_0000 + UInt64(clamped / 1_000_000_000)
        nanoseconds = UInt32(clamped % 1_000_000_000)
    }

    init(_ bytes: UnsafeRawBufferPointer) {
        seconds = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        nanoseconds = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
    }

    func write(to bytes: UnsafeMutableRawBufferPointer) {
        bytes.storeBytes(of: seconds.bigEndian, toByteOffset: 0, as: UInt64.self)
        bytes.storeBytes(of: nanoseconds.bigEndian, toByteOffset: 8, as: UInt32.self)
    }

    static func < (lhs: Tai64n, rhs: Tai64n) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}
