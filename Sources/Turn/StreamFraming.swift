import Stun

/// STUN messages and ChannelData cut out of a byte stream (TURN over TCP or TLS, RFC 8656 §3 and §12.5): a STUN
/// message is as long as its header says; ChannelData is padded to a multiple of 4 bytes. Bytes arrive in any
/// chunks: a read may end inside a frame or hold several. A stream that sends anything else fails with a typed
/// error, and stays failed: the connection is to be closed, since no later frame boundary can be trusted.
///
/// The buffer starts small and grows (to ``maximumFrameLength`` at most) only for a frame that declares more, so
/// an idle connection costs a few KiB. Frames are views into the buffer: nothing is copied or allocated per frame.
///
/// ```swift
/// let n = read(fd, deframer.freeSpace.baseAddress, deframer.freeSpace.count)
/// deframer.commit(n)
/// while let frame = try deframer.nextFrame() { handle(frame.bytes, frame.kind) }   // valid until the next call
/// ```
public final class StreamDeframer {
    /// The longest frame a stream can carry: a STUN message of 20 + 65,532 bytes (a ChannelData frame with its
    /// padding is shorter).
    public static let maximumFrameLength = StunConstants.headerLength + 65_532

    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Bytes of the stream consumed before `start`: where a frame or an error lies in the stream.
    private var consumed = 0
    private var failure: StreamFramingError?

    /// A deframer whose buffer starts at `initialCapacity` bytes.
    public init(initialCapacity: Int = 4096) {
        buffer = .allocate(byteCount: max(initialCapacity, 64), alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Bytes received and not yet handed out as a frame.
    public var buffered: Int { end - start }
    /// The buffer's size: what this stream costs in memory.
    public var capacity: Int { buffer.count }

    /// Where the next read from the stream goes; ``commit(_:)`` says how much arrived. Call it after
    /// ``nextFrame()`` returned `nil`; it is never empty then.
    public var freeSpace: UnsafeMutableRawBufferPointer {
        compact()
        return UnsafeMutableRawBufferPointer(rebasing: buffer[end...])
    }

    /// `count` bytes were written at the start of ``freeSpace``.
    public func commit(_ count: Int) {
        precondition(count >= 0 && end + count <= buffer.count, "committed more than the free space")
        end += count
    }

    /// Copies `bytes` in (for callers that read elsewhere first), growing the buffer if they do not fit. Call
    /// ``nextFrame()`` until `nil` between appends, or the buffer grows with every append.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        if freeSpace.count < bytes.count { grow(toHold: buffered + bytes.count) }
        UnsafeMutableRawBufferPointer(rebasing: buffer[end..<(end + bytes.count)]).copyMemory(from: bytes)
        end += bytes.count
    }

    /// The next whole frame, or `nil` until more bytes arrive. The frame's bytes stay valid until the next call on
    /// this deframer.
    public func nextFrame() throws(StreamFramingError) -> StreamFrame? {
        if let failure { throw failure }
        let available = end - start
        guard available >= 4 else { return nil }
        let first = buffer[start]
        let kind: StreamFrame.Kind, length: Int, padded: Int
        switch first {
        case 0x00...0x3F:
            guard first <= 0x03 else { throw fail(.notStunOrChannelData(firstByte: first, offset: consumed)) }
            let declared = Int(UInt16(buffer[start + 2]) << 8 | UInt16(buffer[start + 3]))
            guard declared % 4 == 0 else { throw fail(.stunLengthNotMultipleOfFour(declared, offset: consumed)) }
            if available >= 8 {
                let cookie = UInt32(bigEndian: UnsafeRawBufferPointer(buffer).loadUnaligned(fromByteOffset: start + 4, as: UInt32.self))
                guard cookie == StunConstants.magicCookie else { throw fail(.noMagicCookie(offset: consumed)) }
            }
            (kind, length, padded) = (.stun, StunConstants.headerLength + declared, StunConstants.headerLength + declared)
        case 0x40...0x7F:
            let declared = Int(UInt16(buffer[start + 2]) << 8 | UInt16(buffer[start + 3]))
            (kind, length) = (.channelData, ChannelData.headerLength + declared)
            padded = ChannelData.streamLength(frameLength: length)
        default:
            throw fail(.notStunOrChannelData(firstByte: first, offset: consumed))
        }
        guard available >= padded else {
            if padded > buffer.count - start { grow(toHold: padded) }
            return nil
        }
        let frame = StreamFrame(kind: kind, bytes: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + length)]), offset: consumed)
        start += padded
        consumed += padded
        return frame
    }

    private func fail(_ error: StreamFramingError) -> StreamFramingError {
        failure = error
        return error
    }

    /// Moves what is left to the front once the free space runs short, so the buffer never needs to be larger than
    /// its longest frame plus one read.
    private func compact() {
        if start == end {
            (start, end) = (0, 0)
            return
        }
        guard start > 0, buffer.count - end < buffer.count / 4 else { return }
        let remaining = end - start
        UnsafeMutableRawBufferPointer(rebasing: buffer[0..<remaining])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
        (start, end) = (0, remaining)
    }

    /// Room for `required` bytes from the front, plus some for the next read.
    private func grow(toHold required: Int) {
        let capacity = max(buffer.count * 2, required + 4096)
        let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        let remaining = end - start
        UnsafeMutableRawBufferPointer(rebasing: larger[0..<remaining]).copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
        buffer.deallocate()
        (buffer, start, end) = (larger, 0, remaining)
    }
}

/// One frame cut from a stream.
public struct StreamFrame {
    public enum Kind: Hashable, Sendable {
        /// A STUN message: header and attributes, as ``Stun/StunMessage`` decodes them.
        case stun
        /// TURN ChannelData: header and payload without the stream's padding, as ``ChannelData/decode(_:)`` decodes them.
        case channelData
    }

    public var kind: Kind
    /// The frame's bytes, valid until the deframer is called again.
    public var bytes: UnsafeRawBufferPointer
    /// Where the frame starts in the stream.
    public var offset: Int
}

/// Why a stream is not TURN: it is to be closed.
public enum StreamFramingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A frame starts with a byte neither STUN (0x00–0x03) nor ChannelData (0x40–0x7F) starts with.
    case notStunOrChannelData(firstByte: UInt8, offset: Int)
    /// A STUN header without the magic cookie.
    case noMagicCookie(offset: Int)
    /// A STUN header whose length is not a multiple of 4 (RFC 8489 §5).
    case stunLengthNotMultipleOfFour(Int, offset: Int)

    public var description: String {
        switch self {
        case let .notStunOrChannelData(byte, offset):
            "byte 0x\(String(byte, radix: 16)) at stream offset \(offset) starts neither STUN nor ChannelData"
        case .noMagicCookie(let offset): "STUN header at stream offset \(offset) lacks the magic cookie"
        case let .stunLengthNotMultipleOfFour(length, offset):
            "STUN header at stream offset \(offset) declares \(length) bytes, not a multiple of 4"
        }
    }
}

extension ChannelData {
    /// A ChannelData frame's length on a stream: padded to a multiple of 4 (RFC 8656 §12.5).
    public static func streamLength(frameLength: Int) -> Int {
        (frameLength + 3) & ~3
    }

    /// Writes the header at the start of `buffer` for a payload already at `buffer + 4`, and the zero padding after
    /// it; returns the padded length to send on a stream.
    @discardableResult
    public static func writeStreamFrame(channel: UInt16, payloadLength: Int, into buffer: UnsafeMutableRawBufferPointer) throws(ChannelDataError) -> Int {
        let length = try writeHeader(channel: channel, payloadLength: payloadLength, into: buffer)
        let padded = streamLength(frameLength: length)
        guard padded <= buffer.count else { throw .bufferTooSmall(needed: padded, available: buffer.count) }
        for index in length..<padded { buffer[index] = 0 }
        return padded
    }
}
