// Unchecked field access at offsets relative to the packet's first byte. Every offset used with these
// was validated against the packet's length when the packet was constructed.
extension IpPacket {
    @inlinable @inline(__always)
    var start: UnsafeMutableRawPointer { _storage.base + offset }

    @inlinable @inline(__always)
    func readUInt8(at position: Int) -> UInt8 {
        start.load(fromByteOffset: position, as: UInt8.self)
    }

    @inlinable @inline(__always)
    func readUInt16(at position: Int) -> UInt16 {
        UInt16(bigEndian: start.loadUnaligned(fromByteOffset: position, as: UInt16.self))
    }

    @inlinable @inline(__always)
    func readUInt32(at position: Int) -> UInt32 {
        UInt32(bigEndian: start.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    @inlinable @inline(__always)
    func readUInt64(at position: Int) -> UInt64 {
        UInt64(bigEndian: start.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    @inlinable @inline(__always)
    func readIPv6Address(at position: Int) -> IPv6Address {
        IPv6Address(high: readUInt64(at: position), low: readUInt64(at: position + 8))
    }

    // Writers assume unique storage: public mutators call `makeStorageUnique()` first.

    @inlinable @inline(__always)
    func writeUInt8(_ value: UInt8, at position: Int) {
        start.storeBytes(of: value, toByteOffset: position, as: UInt8.self)
    }

    @inlinable @inline(__always)
    func writeUInt16(_ value: UInt16, at position: Int) {
        start.storeBytes(of: value.bigEndian, toByteOffset: position, as: UInt16.self)
    }

    @inlinable @inline(__always)
    func writeUInt32(_ value: UInt32, at position: Int) {
        start.storeBytes(of: value.bigEndian, toByteOffset: position, as: UInt32.self)
    }

    @inlinable @inline(__always)
    func writeIPv6Address(_ address: IPv6Address, at position: Int) {
        start.storeBytes(of: address.high.bigEndian, toByteOffset: position, as: UInt64.self)
        start.storeBytes(of: address.low.bigEndian, toByteOffset: position + 8, as: UInt64.self)
    }

    /// Copy-on-write: a packet whose buffer is shared with a copy gets a buffer of its own first.
    @inlinable @inline(__always)
    mutating func makeStorageUnique() {
        guard !isKnownUniquelyReferenced(&_storage) else { return }
        _storage = _storage.duplicate()
    }
}
