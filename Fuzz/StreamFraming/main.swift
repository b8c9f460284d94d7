// libFuzzer harness for TURN's stream framing (STUN and ChannelData over TCP/TLS): the same bytes cut into chunks
// chosen by the input (through freeSpace/commit, as a socket read does) and appended whole give the same frames at
// the same offsets and the same error; frames are contiguous, as long as their headers say, padded to 4 bytes.
// Build and run with `scripts/fuzz StreamFraming [seconds]`.
import Turn

struct Outcome: Equatable {
    var frames: [(kind: StreamFrame.Kind, bytes: [UInt8], offset: Int)] = []
    var error: StreamFramingError?

    static func == (lhs: Outcome, rhs: Outcome) -> Bool {
        lhs.error == rhs.error && lhs.frames.count == rhs.frames.count
            && zip(lhs.frames, rhs.frames).allSatisfy { $0.kind == $1.kind && $0.bytes == $1.bytes && $0.offset == $1.offset }
    }

    /// Takes every frame the deframer has; false once it failed.
    mutating func drain(_ deframer: StreamDeframer) -> Bool {
        do {
            while let frame = try deframer.nextFrame() { frames.append((frame.kind, Array(frame.bytes), frame.offset)) }
            return true
        } catch {
            self.error = error
            return false
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamFraming(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let chunkSeed = Int(data[0])
    let stream = UnsafeRawBufferPointer(start: data + 1, count: size - 1)

    var whole = Outcome()
    let wholeDeframer = StreamDeframer(initialCapacity: 64)
    wholeDeframer.append(stream)
    _ = whole.drain(wholeDeframer)

    var chunked = Outcome()
    let chunkedDeframer = StreamDeframer(initialCapacity: 64)
    var offset = 0, round = 0
    while offset < stream.count {
        let space = chunkedDeframer.freeSpace
        precondition(!space.isEmpty, "free space after the frames were drained")
        let wanted = 1 + (chunkSeed * 31 + round * 17) % 97
        let count = min(wanted, space.count, stream.count - offset)
        space.copyMemory(from: UnsafeRawBufferPointer(rebasing: stream[offset..<(offset + count)]))
        chunkedDeframer.commit(count)
        offset += count
        round += 1
        guard chunked.drain(chunkedDeframer) else { break }
    }
    precondition(whole == chunked, "chunking changed the frames or the error")

    var next = 0
    for frame in whole.frames {
        precondition(frame.offset == next, "frames are contiguous")
        let declared = Int(frame.bytes[2]) << 8 | Int(frame.bytes[3])
        switch frame.kind {
        case .stun:
            precondition(frame.bytes.count == 20 + declared && declared % 4 == 0, "a STUN frame is as long as its header says")
            next += frame.bytes.count
        case .channelData:
            precondition(frame.bytes.count == 4 + declared && (0x40...0x7F).contains(frame.bytes[0]), "ChannelData as declared")
            next += ChannelData.streamLength(frameLength: frame.bytes.count)
            reencode(frame.bytes)
        }
    }
    precondition(next <= stream.count, "frames lie within the stream")
    if let error = whole.error {
        switch error {
        case .notStunOrChannelData(_, let at), .noMagicCookie(let at), .stunLengthNotMultipleOfFour(_, let at):
            precondition(at == next, "the error names where the next frame would start")
            precondition(error.description.contains("stream offset \(at) "), "the message says where")
        }
    }
    return 0
}

/// A ChannelData frame of RFC 8656's channels written for a stream again: the same header and payload, zero padding
/// to a multiple of 4.
func reencode(_ frame: [UInt8]) {
    let channel = UInt16(frame[0]) << 8 | UInt16(frame[1])
    guard ChannelData.channelRange.contains(channel) else { return }
    var buffer = [UInt8](repeating: 0xEE, count: frame.count + 3)
    buffer.replaceSubrange(4..<frame.count, with: frame[4...])
    let written = buffer.withUnsafeMutableBytes { raw in
        Result { () throws(ChannelDataError) in try ChannelData.writeStreamFrame(channel: channel, payloadLength: frame.count - 4, into: raw) }
    }
    guard case .success(let length) = written else { fatalError("a decoded frame is written again") }
    precondition(length == ChannelData.streamLength(frameLength: frame.count) && length % 4 == 0, "padded to 4")
    precondition(buffer[..<frame.count].elementsEqual(frame) && buffer[frame.count..<length].allSatisfy { $0 == 0 }, "same bytes, zero padding")
}
