import Synchronization

/// Size limits of the data path (Firezone's `ip-packet` constants).
public enum PacketLimits {
    /// The largest IP packet the tunnel carries: the TUN MTU.
    public static let maxIpPacketSize = 1280
    /// The largest IP payload: 1280 − 60 (the largest IPv4 header).
    public static let maxIpPayloadSize = maxIpPacketSize - 60
    /// The largest UDP payload: the limit for DNS answers written to the TUN device.
    public static let maxUdpPayloadSize = maxIpPayloadSize - 8
    /// WireGuard's per-packet overhead: type, receiver index, counter and the AEAD tag.
    public static let wireGuardOverhead = 32
    /// TURN ChannelData's header.
    public static let channelDataOverhead = 4
    /// The size of every pool buffer: room for an IP packet wrapped in WireGuard and ChannelData.
    public static let bufferSize = maxIpPacketSize + wireGuardOverhead + channelDataOverhead
}

/// A fixed-size byte buffer that packets are parsed from and built in.
///
/// Buffers come from a ``PacketBufferPool`` and go back to it when the packet is done, so the data path
/// allocates only while the pool grows to its working set. An ``IpPacket`` holds a reference to its
/// buffer and copies it on write when it is shared, so packets keep value semantics.
public final class PacketBuffer: @unchecked Sendable {
    /// The start of the buffer's memory.
    public let base: UnsafeMutableRawPointer
    /// The buffer's size in bytes.
    public let capacity: Int

    /// Allocates a buffer of `capacity` zeroed bytes (``PacketLimits/bufferSize`` unless told otherwise).
    public init(capacity: Int = PacketLimits.bufferSize) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
    }

    deinit {
        base.deallocate()
    }

    /// The buffer's bytes, for reading and writing through C APIs (`read(2)`, libsodium, libpcap).
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base, count: capacity)
    }

    /// Copies `source` into the buffer at `offset`; returns `false`, copying nothing, when it does not fit.
    @discardableResult
    public func copy(from source: UnsafeRawBufferPointer, at offset: Int = 0) -> Bool {
        guard offset >= 0, source.count <= capacity - offset else { return false }
        guard let sourceBase = source.baseAddress else { return true }
        (base + offset).copyMemory(from: sourceBase, byteCount: source.count)
        return true
    }

    @usableFromInline
    func duplicate() -> PacketBuffer {
        let copy = PacketBuffer(capacity: capacity)
        copy.base.copyMemory(from: base, byteCount: capacity)
        return copy
    }
}

/// A thread-safe free list of ``PacketBuffer``s, so steady-state packet processing never allocates.
public final class PacketBufferPool: Sendable {
    /// The process-wide pool the builders use by default.
    public static let shared = PacketBufferPool()

    private let free: Mutex<[PacketBuffer]>
    private let limit: Int
    private let made = Atomic<Int>(0)

    /// A pool that keeps at most `limit` idle buffers; buffers recycled beyond that are released.
    public init(limit: Int = 4096) {
        self.limit = limit
        var storage: [PacketBuffer] = []
        storage.reserveCapacity(limit)
        free = Mutex(storage)
    }

    /// A buffer from the free list, or a new one when the list is empty. Its contents are unspecified.
    public func take() -> PacketBuffer {
        if let buffer = free.withLock({ $0.popLast() }) { return buffer }
        made.add(1, ordering: .relaxed)
        return PacketBuffer()
    }

    /// How many buffers the pool has allocated: its working set once warm, unless buffers leak to ARC.
    public var buffersMade: Int { made.load(ordering: .relaxed) }

    /// Returns a packet's buffer to the pool. A buffer still shared with a copy of the packet is left
    /// to ARC instead, so a recycled buffer is never written while somebody reads it.
    public func recycle(_ packet: consuming IpPacket) {
        var storage = packet.storage
        _ = consume packet
        guard isKnownUniquelyReferenced(&storage), storage.capacity == PacketLimits.bufferSize else { return }
        let buffer = storage
        free.withLock { free in
            guard free.count < limit else { return }
            free.append(buffer)
        }
    }

    /// The number of idle buffers, for metrics and tests.
    public var idleCount: Int {
        free.withLock { $0.count }
    }
}
