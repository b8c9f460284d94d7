import Stun
import Testing
import Turn

/// TURN over TCP: frames cut from a byte stream however it was chunked. The independent side (coturn's and aioice's
/// TCP clients against our relay) is in `RelayBinaryTests`; here the chunking and the errors, exhaustively.
@Suite("Turn: STUN and ChannelData framed on a stream")
struct StreamDeframerTests {
    /// A BINDING request (40 bytes with its SOFTWARE), ChannelData of 5 bytes (padded to 12), ChannelData of 8 (unpadded),
    /// and another STUN message: the stream and the frames it holds.
    static let frames: [(kind: StreamFrame.Kind, bytes: [UInt8])] = {
        let binding = StunMessage(class: .request, method: .binding, transactionId: TransactionId(bytes: (1, 2, 3)),
                                  attributes: [.software("stream test 0001")]).encode()
        let refresh = StunMessage(class: .request, method: .refresh, transactionId: TransactionId(bytes: (4, 5, 6)),
                                  attributes: [.lifetime(seconds: 0)]).encode()
        return [(.stun, binding), (.channelData, [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5]),
                (.channelData, [0x40, 0x01, 0x00, 0x08] + Array(repeating: 7, count: 8)), (.stun, refresh)]
    }()

    static var stream: [UInt8] {
        frames.flatMap { $0.bytes + Array(repeating: 0, count: ChannelData.streamLength(frameLength: $0.bytes.count) - $0.bytes.count) }
    }

    /// Feeds `stream` in chunks cut at `cuts` and collects every frame.
    static func frames(of stream: [UInt8], cutAt cuts: [Int], deframer: StreamDeframer = StreamDeframer(initialCapacity: 64))
        throws(StreamFramingError) -> [(kind: StreamFrame.Kind, bytes: [UInt8], offset: Int)] {
        var found: [(kind: StreamFrame.Kind, bytes: [UInt8], offset: Int)] = []
        var previous = 0
        for cut in cuts + [stream.count] where cut >= previous {
            stream[previous..<cut].withUnsafeBytes { deframer.append($0) }
            previous = cut
            while let frame = try deframer.nextFrame() { found.append((frame.kind, Array(frame.bytes), frame.offset)) }
        }
        return found
    }

    @Test("every way of cutting the stream in two or three gives the same frames, padding removed")
    func everyCut() throws {
        let stream = Self.stream
        let expected = Self.frames
        for first in 0...stream.count {
            for second in stride(from: first, through: stream.count, by: 7) {
                let found = try Self.frames(of: stream, cutAt: [first, second])
                #expect(found.map(\.bytes) == expected.map(\.bytes), "cut at \(first), \(second)")
                #expect(found.map(\.kind) == expected.map(\.kind))
            }
        }
        let offsets = try Self.frames(of: stream, cutAt: []).map(\.offset)
        #expect(offsets == [0, 40, 52, 64], "each frame where it starts in the stream, padding counted")
    }

    @Test("several frames in one read, and the buffer reused across thousands of them without growing")
    func manyFrames() throws {
        let deframer = StreamDeframer(initialCapacity: 4096)
        var count = 0
        for round in 0..<2000 {
            let bytes = Self.stream
            bytes.withUnsafeBytes { raw in
                let space = deframer.freeSpace
                #expect(space.count >= raw.count, "round \(round): \(space.count) bytes free")
                space.copyMemory(from: raw)
            }
            deframer.commit(bytes.count)
            while try deframer.nextFrame() != nil { count += 1 }
            #expect(deframer.buffered == 0)
        }
        #expect(count == 8000 && deframer.capacity == 4096)
    }

    @Test("a frame of the largest size arrives a byte at a time")
    func largestFrame() throws {
        let payload = [UInt8](repeating: 0xAB, count: 65_535)
        let frame = try ChannelData.encode(channel: 0x4FFF, payload: payload)
        let stream = frame + [0, 0x40, 0x00, 0x00, 0x00]  // a byte of padding, then an empty ChannelData frame
        let deframer = StreamDeframer(initialCapacity: 64)
        var found: [[UInt8]] = []
        for byte in stream {
            [byte].withUnsafeBytes { deframer.append($0) }
            while let next = try deframer.nextFrame() { found.append(Array(next.bytes)) }
        }
        #expect(found.count == 2 && found.first == frame && found.last == [0x40, 0x00, 0x00, 0x00], "\(found.map(\.count)) bytes")
    }

    @Test("garbage ends the stream with an error that says what and where; the deframer stays failed", arguments: [
        ([0x80, 0, 0, 0], StreamFramingError.notStunOrChannelData(firstByte: 0x80, offset: 40)),
        ([0x17, 0x03, 0x03, 0x00], .notStunOrChannelData(firstByte: 0x17, offset: 40)),  // a TLS record on the TCP port
        ([0x00, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef], .noMagicCookie(offset: 40)),
        ([0x00, 0x01, 0x00, 0x06], .stunLengthNotMultipleOfFour(6, offset: 40)),
    ])
    func garbage(bytes: [UInt8], expected: StreamFramingError) throws {
        let deframer = StreamDeframer()
        let stream = Array(Self.stream.prefix(40)) + bytes
        stream.withUnsafeBytes { deframer.append($0) }
        #expect(try deframer.nextFrame()?.kind == .stun, "the frame before the garbage is still handed out")
        #expect(throws: expected) { try deframer.nextFrame() }
        Self.stream.withUnsafeBytes { deframer.append($0) }
        #expect(throws: expected) { try deframer.nextFrame() }
    }

    @Test("a ChannelData frame for a stream: header, payload, zero padding to a multiple of 4")
    func writesPadding() throws {
        var buffer = [UInt8](repeating: 0xFF, count: 16)
        let length = try buffer.withUnsafeMutableBytes { try ChannelData.writeStreamFrame(channel: 0x4001, payloadLength: 5, into: $0) }
        #expect(length == 12)
        #expect(Array(buffer[0..<4]) == [0x40, 0x01, 0x00, 0x05] && Array(buffer[9..<12]) == [0, 0, 0])
        #expect(throws: ChannelDataError.bufferTooSmall(needed: 12, available: 10)) {
            var small = [UInt8](repeating: 0, count: 10)
            try small.withUnsafeMutableBytes { _ = try ChannelData.writeStreamFrame(channel: 0x4001, payloadLength: 5, into: $0) }
        }
    }
}
