/// WireGuard's four message types and their fixed layouts (little-endian integers; spec `snownet.md` §4.3).
public enum WireGuardMessage {
    public static let initiationLength = 148
    public static let responseLength = 92
    public static let cookieReplyLength = 64
    /// Type, receiver index, counter, and the AEAD tag around the (possibly empty) plaintext.
    public static let dataOverhead = 32
    public static let dataHeaderLength = 16

    /// What a datagram is, read from its type word and length alone, for de-multiplexing.
    public enum Peek: Hashable, Sendable {
        case initiation(senderIndex: UInt32)
        case response(senderIndex: UInt32, receiverIndex: UInt32)
        case cookieReply(receiverIndex: UInt32)
        case data(receiverIndex: UInt32, counter: UInt64)
    }

    /// Classifies a datagram as one of the four messages by its type word (1–4 with three zero bytes) and
    /// exact length; `nil` for anything else.
    public static func peek(_ datagram: UnsafeRawBufferPointer) -> Peek? {
        guard datagram.count >= 4 else { return nil }
        switch (datagram.uint32LE(at: 0), datagram.count) {
        case (1, initiationLength):
            return .initiation(senderIndex: datagram.uint32LE(at: 4))
        case (2, responseLength):
            return .response(senderIndex: datagram.uint32LE(at: 4), receiverIndex: datagram.uint32LE(at: 8))
        case (3, cookieReplyLength):
            return .cookieReply(receiverIndex: datagram.uint32LE(at: 4))
        case (4, dataOverhead...):
            return .data(receiverIndex: datagram.uint32LE(at: 4), counter: datagram.uint64LE(at: 8))
        default:
            return nil
        }
    }
}

/// Field offsets within each message.
enum Layout {
    enum Initiation {
        static let sender = 4
        static let ephemeral = 8
        static let encryptedStatic = 40      // 32 + 16 tag
        static let encryptedTimestamp = 88   // 12 + 16 tag
        static let mac1 = 116
        static let mac2 = 132
    }

    enum Response {
        static let sender = 4
        static let receiver = 8
        static let ephemeral = 12
        static let encryptedNothing = 44     // 0 + 16 tag
        static let mac1 = 60
        static let mac2 = 76
    }

    enum CookieReply {
        static let receiver = 4
        static let nonce = 8                 // 24 bytes
        static let encryptedCookie = 32      // 16 + 16 tag
    }

    enum Data {
        static let receiver = 4
        static let counter = 8
        static let payload = 16
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func uint32LE(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    func uint64LE(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    func slice(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[offset..<(offset + count)])
    }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always)
    func storeUInt32LE(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inline(__always)
    func storeUInt64LE(_ value: UInt64, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    func slice(_ offset: Int, _ count: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: self[offset..<(offset + count)])
    }
}
