/// Why bytes are not an acceptable STUN message. Prints as one sentence.
public struct StunError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: Reason
    /// The message type and transaction id, when the header could be read.
    public var messageType: UInt16?
    public var transactionId: TransactionId?

    public init(_ reason: Reason, messageType: UInt16? = nil, transactionId: TransactionId? = nil) {
        self.reason = reason
        self.messageType = messageType
        self.transactionId = transactionId
    }

    public enum Reason: Hashable, Sendable {
        case tooShort(length: Int)
        case notStun(firstByte: UInt8)
        case badMagicCookie(UInt32)
        case lengthNotMultipleOfFour(Int)
        case lengthMismatch(declared: Int, actual: Int)
        case truncatedAttribute(type: UInt16, offset: Int, length: Int)
        case malformedAttribute(type: UInt16, why: String)
        case fingerprintNotLast
    }

    public var description: String {
        var text = ""
        if let messageType {
            text += "STUN message type 0x\(String(messageType, radix: 16))"
            if let transactionId { text += " (transaction \(transactionId))" }
            text += ": "
        }
        switch reason {
        case .tooShort(let length): text += "\(length) bytes are too few for a STUN header"
        case .notStun(let first): text += "first byte 0x\(String(first, radix: 16)) is not a STUN message type"
        case .badMagicCookie(let cookie): text += "magic cookie 0x\(String(cookie, radix: 16)) is not 0x2112a442"
        case .lengthNotMultipleOfFour(let length): text += "message length \(length) is not a multiple of 4"
        case let .lengthMismatch(declared, actual): text += "message length \(declared) + 20 does not match \(actual) bytes"
        case let .truncatedAttribute(type, offset, length):
            text += "attribute 0x\(String(type, radix: 16)) at offset \(offset) runs past the message (length \(length))"
        case let .malformedAttribute(type, why): text += "attribute 0x\(String(type, radix: 16)) is malformed: \(why)"
        case .fingerprintNotLast: text += "FINGERPRINT is not the last attribute"
        }
        return text
    }
}
