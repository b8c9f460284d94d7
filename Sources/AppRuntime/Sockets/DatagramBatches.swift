#if canImport(Glibc)
import CLinuxIO
import Glibc
import SansIO

/// Memory for one `recvmmsg`: `capacity` slots of `slotSize` bytes with their addresses and control messages,
/// allocated once and reused for every read.
public final class ReceiveBatch {
    public let capacity: Int
    public let slotSize: Int
    let messages: UnsafeMutablePointer<cudp_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let controls: UnsafeMutableRawPointer
    /// Room for the GRO segment size and the packet information of either family.
    private let controlSize = cudp_cmsg_space(MemoryLayout<Int32>.size) + cudp_cmsg_space(20) + 16
    private let storage: UnsafeMutableRawPointer
    /// Datagrams in the batch since the last read.
    public internal(set) var received = 0

    /// 64 KiB slots hold what receive offload coalesces.
    public init(capacity: Int = 64, slotSize: Int = 65_536) {
        self.capacity = capacity
        self.slotSize = slotSize
        messages = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        names = .allocate(capacity: capacity)
        controls = .allocate(byteCount: capacity * controlSize, alignment: 16)
        storage = .allocate(byteCount: capacity * slotSize, alignment: 16)
    }

    deinit {
        messages.deallocate()
        vectors.deallocate()
        names.deallocate()
        controls.deallocate()
        storage.deallocate()
    }

    /// The kernel overwrites lengths on every read; they are reset before the next.
    func prepare() {
        received = 0
        for index in 0..<capacity {
            vectors[index] = iovec(iov_base: storage + index * slotSize, iov_len: slotSize)
            messages[index].msg_hdr = msghdr(
                msg_name: UnsafeMutableRawPointer(names + index), msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                msg_iov: vectors + index, msg_iovlen: 1, msg_control: controls + index * controlSize, msg_controllen: controlSize,
                msg_flags: 0)
            messages[index].msg_len = 0
        }
    }

    /// Who sent datagram `index`.
    public func source(at index: Int) -> SocketAddress? {
        SocketAddress(names + index)
    }

    /// The bytes of datagram `index`: one datagram, or several of ``segmentSize(at:)`` bytes each (the last may
    /// be shorter) when the kernel coalesced them.
    public func bytes(at index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: storage + index * slotSize, count: Int(messages[index].msg_len))
    }

    /// The size of the segments in datagram `index` (its whole length when nothing was coalesced).
    public func segmentSize(at index: Int) -> Int {
        let length = Int(messages[index].msg_len)
        guard let data = control(of: index, level: CUDP_SOL_UDP, type: CUDP_UDP_GRO) else { return length }
        let size = Int(data.loadUnaligned(as: Int32.self))
        return size > 0 ? size : length
    }

    /// The address datagram `index` was sent to (one of ours), when the socket reports it.
    public func destination(at index: Int) -> IpAddress? {
        if let data = control(of: index, level: Int32(IPPROTO_IP), type: CUDP_IP_PKTINFO) {
            return .v4(IPv4Address(UInt32(bigEndian: data.loadUnaligned(fromByteOffset: 8, as: UInt32.self))))
        }
        if let data = control(of: index, level: Int32(IPPROTO_IPV6), type: CUDP_IPV6_PKTINFO) {
            return .v6(IPv6Address(high: UInt64(bigEndian: data.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                                   low: UInt64(bigEndian: data.loadUnaligned(fromByteOffset: 8, as: UInt64.self))))
        }
        return nil
    }

    private func control(of index: Int, level: Int32, type: Int32) -> UnsafeRawPointer? {
        var header = cudp_cmsg_firsthdr(&messages[index].msg_hdr)
        while let current = header {
            if current.pointee.cmsg_level == level, current.pointee.cmsg_type == type { return UnsafeRawPointer(cudp_cmsg_data(current)) }
            header = cudp_cmsg_nxthdr(&messages[index].msg_hdr, current)
        }
        return nil
    }
}

/// Datagrams waiting for one `sendmmsg`. With `coalescing`, a run of datagrams to the same destination of the
/// same size (the last may be shorter) shares one buffer that the kernel cuts into segments (`UDP_SEGMENT`).
public final class SendBatch {
    /// The kernel's limit on segments per send (`UDP_MAX_SEGMENTS`).
    public static let maximumSegments = 64
    public let capacity: Int
    /// Whether runs of datagrams to one destination join into one segmented message; the socket turns it off when
    /// its egress device refuses segmentation.
    public internal(set) var coalescing: Bool
    private let groupSize = 65_000
    let messages: UnsafeMutablePointer<cudp_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let controls: UnsafeMutableRawPointer
    private let controlSize = cudp_cmsg_space(MemoryLayout<UInt16>.size)
    private let storage: UnsafeMutableRawPointer
    private var destinations: [SocketAddress]
    private var lengths: [Int]
    private var segmentSizes: [Int]
    private var segmentCounts: [Int]

    public init(capacity: Int = 64, coalescing: Bool) {
        self.capacity = capacity
        self.coalescing = coalescing
        messages = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        names = .allocate(capacity: capacity)
        controls = .allocate(byteCount: capacity * controlSize, alignment: 16)
        storage = .allocate(byteCount: capacity * groupSize, alignment: 16)
        destinations = []
        destinations.reserveCapacity(capacity)
        lengths = []
        lengths.reserveCapacity(capacity)
        segmentSizes = []
        segmentSizes.reserveCapacity(capacity)
        segmentCounts = []
        segmentCounts.reserveCapacity(capacity)
    }

    deinit {
        messages.deallocate()
        vectors.deallocate()
        names.deallocate()
        controls.deallocate()
        storage.deallocate()
    }

    public var isEmpty: Bool { destinations.isEmpty }
    /// Datagrams in the batch, counting every segment.
    public var datagramCount: Int { segmentCounts.reduce(0, +) }

    /// Copies `payload` into the batch; `false` when it is full (send it, then append again).
    public func append(_ payload: UnsafeRawBufferPointer, to destination: SocketAddress) -> Bool {
        guard payload.count <= groupSize else { return false }
        let last = destinations.count - 1
        if coalescing, last >= 0, destinations[last] == destination, payload.count <= segmentSizes[last],
           lengths[last] == segmentSizes[last] * segmentCounts[last], segmentCounts[last] < Self.maximumSegments,
           lengths[last] + payload.count <= groupSize {
            copy(payload, into: last, at: lengths[last])
            lengths[last] += payload.count
            segmentCounts[last] += 1
            return true
        }
        guard destinations.count < capacity else { return false }
        destinations.append(destination)
        lengths.append(payload.count)
        segmentSizes.append(payload.count)
        segmentCounts.append(1)
        copy(payload, into: last + 1, at: 0)
        return true
    }

    func removeAll() {
        destinations.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        segmentSizes.removeAll(keepingCapacity: true)
        segmentCounts.removeAll(keepingCapacity: true)
    }

    /// Fills in the message headers; returns how many messages there are.
    func prepare(segmenting: Bool) -> Int {
        for index in destinations.indices {
            let nameLength = destinations[index].write(to: names + index)
            vectors[index] = iovec(iov_base: storage + index * groupSize, iov_len: lengths[index])
            var header = msghdr(msg_name: UnsafeMutableRawPointer(names + index), msg_namelen: nameLength, msg_iov: vectors + index,
                                msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
            if segmenting, segmentCounts[index] > 1 {
                header.msg_control = controls + index * controlSize
                header.msg_controllen = controlSize
                let control = cudp_cmsg_firsthdr(&header)!
                control.pointee.cmsg_level = CUDP_SOL_UDP
                control.pointee.cmsg_type = CUDP_UDP_SEGMENT
                control.pointee.cmsg_len = cudp_cmsg_len(MemoryLayout<UInt16>.size)
                UnsafeMutableRawPointer(cudp_cmsg_data(control)).storeBytes(of: UInt16(segmentSizes[index]), as: UInt16.self)
            }
            messages[index].msg_hdr = header
            messages[index].msg_len = 0
        }
        return destinations.count
    }

    func segments(of index: Int) -> Int { segmentCounts[index] }

    /// A plain message header for each datagram of message `index`, in order (the message as prepared untouched).
    func forEachSegment(of index: Int, _ body: (inout msghdr) -> Void) {
        let base = storage + index * groupSize
        var start = 0
        while start < lengths[index] {
            let length = min(segmentSizes[index], lengths[index] - start)
            var vector = iovec(iov_base: base + start, iov_len: length)
            withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var header = msghdr(msg_name: UnsafeMutableRawPointer(names + index), msg_namelen: messages[index].msg_hdr.msg_namelen,
                                    msg_iov: vectorPointer, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
                body(&header)
            }
            start += length
        }
    }
    func destination(of index: Int) -> SocketAddress { destinations[index] }

    private func copy(_ payload: UnsafeRawBufferPointer, into group: Int, at offset: Int) {
        guard let base = payload.baseAddress else { return }
        (storage + group * groupSize + offset).copyMemory(from: base, byteCount: payload.count)
    }
}
#endif
