import SansIO

/// Puts IPv4 and IPv6 fragments of UDP datagrams back together, as a receiving host does: fragments may come
/// in any order and twice; the datagram is whole once its bytes from 0 to the last fragment's end are all
/// there. Memory is bounded: at most ``maximumPending`` datagrams wait, the oldest is given up for a new
/// one, and a datagram still incomplete ``timeoutNanoseconds`` after its first fragment is given up too.
public struct FragmentReassembler {
    /// What identifies the fragments of one datagram (RFC 791 §3.2, RFC 8200 §4.5).
    public struct Key: Hashable, Sendable {
        public var source: IpAddress
        public var destination: IpAddress
        public var identification: UInt32
        public var transportProtocol: UInt8
    }

    /// One fragment; `bytes` is what follows the IP header (and IPv6's fragment header).
    public struct Fragment {
        public var key: Key
        /// Where the bytes go in the datagram's payload.
        public var offset: Int
        /// Whether this fragment ends the datagram (no "more fragments" flag).
        public var isLast: Bool
        public var bytes: UnsafeRawBufferPointer
    }

    public static let maximumPending = 64
    /// Linux's `ipfrag_time`.
    public static let timeoutNanoseconds: Int64 = 30_000_000_000

    /// Datagrams given up incomplete so far: timed out or pushed out by newer ones.
    public private(set) var abandoned = 0

    private var pending: [Key: Pending] = [:]

    public init() {}

    /// How many datagrams wait for fragments.
    public var pendingCount: Int { pending.count }

    /// Adds a fragment captured at `timestampNanoseconds`; returns the whole transport payload once the
    /// fragment completes its datagram.
    public mutating func add(_ fragment: Fragment, at timestampNanoseconds: Int64) throws(UnderlayPacketError) -> [UInt8]? {
        abandonExpired(at: timestampNanoseconds)
        let end = fragment.offset + fragment.bytes.count
        guard end <= 65_535 else { throw UnderlayPacketError("fragment ends at byte \(end) of its datagram, beyond 65,535") }
        guard fragment.isLast || fragment.bytes.count % 8 == 0 else {
            throw UnderlayPacketError("a fragment other than the last has \(fragment.bytes.count) bytes, not a multiple of 8")
        }
        if pending[fragment.key] == nil {
            if pending.count >= Self.maximumPending, let oldest = pending.min(by: { $0.value.firstSeen < $1.value.firstSeen })?.key {
                pending[oldest] = nil
                abandoned += 1
            }
            pending[fragment.key] = Pending(firstSeen: timestampNanoseconds)
        }
        do {
            try pending[fragment.key]!.add(offset: fragment.offset, bytes: fragment.bytes, isLast: fragment.isLast)
        } catch {
            pending[fragment.key] = nil
            throw error
        }
        guard let whole = pending[fragment.key]!.whole() else { return nil }
        pending[fragment.key] = nil
        return whole
    }

    /// Gives up every datagram still waiting (the capture ended); returns how many there were.
    public mutating func abandonAll() -> Int {
        let count = pending.count
        abandoned += count
        pending = [:]
        return count
    }

    private mutating func abandonExpired(at now: Int64) {
        let expired = pending.filter { now - $0.value.firstSeen > Self.timeoutNanoseconds }.keys
        for key in expired { pending[key] = nil }
        abandoned += expired.count
    }

    private struct Pending {
        var firstSeen: Int64
        var pieces: [(offset: Int, bytes: [UInt8])] = []
        var totalLength: Int?
        var heldBytes = 0

        mutating func add(offset: Int, bytes: UnsafeRawBufferPointer, isLast: Bool) throws(UnderlayPacketError) {
            let end = offset + bytes.count
            if isLast {
                if let totalLength, totalLength != end {
                    throw UnderlayPacketError("two last fragments end at \(totalLength) and \(end)")
                }
                totalLength = end
            }
            if let totalLength, end > totalLength {
                throw UnderlayPacketError("a fragment ends at \(end), after the datagram's end at \(totalLength)")
            }
            var isDuplicate = false
            for piece in pieces {
                let lower = max(offset, piece.offset), upper = min(end, piece.offset + piece.bytes.count)
                guard lower < upper else { continue }
                let overlap = lower..<upper
                let mismatch = overlap.contains { bytes[$0 - offset] != piece.bytes[$0 - piece.offset] }
                guard !mismatch else { throw UnderlayPacketError("overlapping fragments disagree about bytes \(overlap)") }
                isDuplicate = isDuplicate || overlap == offset..<end
            }
            guard !isDuplicate else { return }
            heldBytes += bytes.count
            guard pieces.count < 1024, heldBytes <= 2 * 65_535 else {
                throw UnderlayPacketError("more than 1,024 fragments or 128 KiB held for one datagram")
            }
            pieces.append((offset, Array(bytes)))
        }

        /// The datagram's payload once every byte up to the last fragment's end is there.
        func whole() -> [UInt8]? {
            guard let totalLength else { return nil }
            var covered = 0
            for piece in pieces.sorted(by: { $0.offset < $1.offset }) {
                guard piece.offset <= covered else { return nil }
                covered = max(covered, piece.offset + piece.bytes.count)
            }
            guard covered == totalLength else { return nil }
            var whole = [UInt8](repeating: 0, count: totalLength)
            for piece in pieces { whole.replaceSubrange(piece.offset..<(piece.offset + piece.bytes.count), with: piece.bytes) }
            return whole
        }
    }
}
