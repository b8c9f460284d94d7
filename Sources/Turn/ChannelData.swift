/// TURN ChannelData framing (RFC 8656 §12.4, spec `snownet.md` §3.5): channel number, payload length, payload,
/// no padding over UDP. Decoding and encoding work on caller buffers and never allocate.
///
/// ```swift
/// // Encode in place: the payload already sits at buffer + 4.
/// let count = try ChannelData.writeHeader(channel: 0x4000, payloadLength: 148, into: buffer)
/// // Decode: the payload is a range of the datagram.
/// let (channel, payload) = try ChannelData.decode(datagram)
/// ```
public enum ChannelData {
    public static let headerLength = 4
    /// Numbers this client requests (RFC 8656's range).
    public static let channelRange: ClosedRange<UInt16> = 0x4000...0x4FFF
    /// Numbers the decoder accepts (what the first byte 0x40–0x7F can carry).
    public static let acceptedRange: ClosedRange<UInt16> = 0x4000...0x7FFF

    /// The channel number and where the payload lies. The length must match the datagram exactly: a padded
    /// frame is rejected, as snownet does.
    public static func decode(_ datagram: UnsafeRawBufferPointer) throws(ChannelDataError) -> (channel: UInt16, payload: Range<Int>) {
        guard datagram.count >= headerLength else { throw .tooShort(length: datagram.count) }
        let channel = UInt16(datagram[0]) << 8 | UInt16(datagram[1])
        guard acceptedRange.contains(channel) else { throw .channelOutOfRange(channel) }
        let length = Int(UInt16(datagram[2]) << 8 | UInt16(datagram[3]))
        guard length == datagram.count - headerLength else {
            throw .lengthMismatch(declared: length, actual: datagram.count - headerLength)
        }
        return (channel, headerLength..<datagram.count)
    }

    /// Writes the 4-byte header at the start of `buffer` for a payload already at `buffer + 4`; returns the
    /// frame's length.
    @discardableResult
    public static func writeHeader(channel: UInt16, payloadLength: Int, into buffer: UnsafeMutableRawBufferPointer) throws(ChannelDataError) -> Int {
        guard channelRange.contains(channel) else { throw .channelOutOfRange(channel) }
        guard payloadLength <= Int(UInt16.max) else { throw .payloadTooLarge(length: payloadLength) }
        guard buffer.count >= headerLength + payloadLength else {
            throw .bufferTooSmall(needed: headerLength + payloadLength, available: buffer.count)
        }
        buffer[0] = UInt8(channel >> 8)
        buffer[1] = UInt8(channel & 0xFF)
        buffer[2] = UInt8(payloadLength >> 8)
        buffer[3] = UInt8(payloadLength & 0xFF)
        return headerLength + payloadLength
    }

    /// A complete frame as a new array. Allocates: for control traffic and tests, not the data path.
    public static func encode(channel: UInt16, payload: some Collection<UInt8>) throws(ChannelDataError) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: headerLength + payload.count)
        frame.replaceSubrange(headerLength..., with: payload)
        let result = frame.withUnsafeMutableBytes { buffer in
            Result { () throws(ChannelDataError) in try writeHeader(channel: channel, payloadLength: payload.count, into: buffer) }
        }
        _ = try result.get()
        return frame
    }
}

/// Why bytes are not a ChannelData frame we accept.
public enum ChannelDataError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooShort(length: Int)
    case channelOutOfRange(UInt16)
    case lengthMismatch(declared: Int, actual: Int)
    case payloadTooLarge(length: Int)
    case bufferTooSmall(needed: Int, available: Int)

    public var description: String {
        switch self {
        case .tooShort(let length): "ChannelData of \(length) bytes is shorter than its 4-byte header"
        case .channelOutOfRange(let channel): "channel number 0x\(String(channel, radix: 16)) is outside 0x4000–0x7fff"
        case let .lengthMismatch(declared, actual): "ChannelData length \(declared) does not match the \(actual) payload bytes"
        case .payloadTooLarge(let length): "payload of \(length) bytes does not fit a ChannelData frame"
        case let .bufferTooSmall(needed, available): "buffer of \(available) bytes, \(needed) needed"
        }
    }
}
