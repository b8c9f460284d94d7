/// UDP segmentation offload (GSO) lets a sender hand the kernel several datagrams to one destination as one
/// buffer, cut into segments of one size (the last may be shorter) only on the way out. A capture taken before
/// that cut (on the sending host, or across a veth pair, which passes the buffer on whole) shows one UDP
/// datagram holding all of them, of any kinds (an initiation and a STUN answer to the same peer). The segment
/// size is not in the capture; this finds it from the first message's own length, and accepts it only when
/// every segment holds a message whose own length fills it (the last may be shorter).
enum CoalescedDatagrams {
    /// The segments of `payload` when it holds two or more coalesced messages; `nil` when it is one datagram.
    static func segments(of payload: UnsafeRawBufferPointer) -> [Range<Int>]? {
        guard let first = Header(payload) else { return nil }
        for size in first.candidateSizes(in: payload) where size >= 4 && size < payload.count {
            let ranges = stride(from: 0, to: payload.count, by: size).map { $0..<min($0 + size, payload.count) }
            if ranges.allSatisfy({ Header.fills(UnsafeRawBufferPointer(rebasing: payload[$0])) }) {
                return ranges
            }
        }
        return nil
    }

    /// What a message's first bytes say: its kind and, where the header has one, its length.
    private struct Header {
        enum Kind: Equatable { case stun, channelData, wireGuard(UInt8) }
        var kind: Kind
        var bytes: UnsafeRawBufferPointer

        init?(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count >= 8 else { return nil }
            self.bytes = bytes
            if bytes[0] <= 3, bytes.count >= 20, bytes[4] == 0x21, bytes[5] == 0x12, bytes[6] == 0xA4, bytes[7] == 0x42 {
                kind = .stun
            } else if (0x40...0x4F).contains(bytes[0]) {
                kind = .channelData
            } else if (1...4).contains(bytes[0]), bytes[1] == 0, bytes[2] == 0, bytes[3] == 0 {
                kind = .wireGuard(bytes[0])
            } else {
                return nil
            }
        }

        var length: Int { Int(bytes[2]) << 8 | Int(bytes[3]) }

        /// Segment sizes this first message allows, most likely first.
        func candidateSizes(in payload: UnsafeRawBufferPointer) -> [Int] {
            switch kind {
            case .stun: return [20 + length]
            // Over UDP a sender may pad ChannelData to 4 bytes or not.
            case .channelData: return [(4 + length + 3) / 4 * 4, 4 + length]
            case .wireGuard(1): return [148]
            case .wireGuard(2): return [92]
            case .wireGuard(3): return [64]
            default: return repeatedDataHeader(in: payload).map { [$0] } ?? []
            }
        }

        /// Data messages carry no length: the segment size is where the same type and receiver index come again.
        private func repeatedDataHeader(in payload: UnsafeRawBufferPointer) -> Int? {
            var offset = 32
            while offset + 16 <= payload.count {
                if (0..<8).allSatisfy({ payload[offset + $0] == payload[$0] }) { return offset }
                offset += 1
            }
            return nil
        }

        /// Whether `segment` holds one message whose own length (where its header gives one) fills it.
        static func fills(_ segment: UnsafeRawBufferPointer) -> Bool {
            guard let header = Header(segment) else { return false }
            switch header.kind {
            case .stun: return 20 + header.length == segment.count
            case .channelData: return 4 + header.length <= segment.count && segment.count - (4 + header.length) < 4
            case .wireGuard(1): return segment.count == 148
            case .wireGuard(2): return segment.count == 92
            case .wireGuard(3): return segment.count == 64
            case .wireGuard: return segment.count >= 32
            }
        }
    }
}
