import SansIO

/// A STUN message (RFC 8489): class, method, transaction id and attributes.
///
/// ```swift
/// var request = StunMessage(class: .request, method: .binding, transactionId: .random())
/// request.attributes.append(.username("remote:local"))
/// let bytes = request.encode(integrity: .sha1(key: StunKey.shortTerm(password: "pass")), fingerprint: true)
///
/// let response = try StunMessage(decoding: datagram)
/// guard response.verifyIntegrity(key: key), response.verifyFingerprint() != false else { return }
/// ```
public struct StunMessage: Hashable, Sendable {
    public var messageClass: StunClass
    public var method: StunMethod
    public var transactionId: TransactionId
    /// The attributes in order, without MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT: those are computed by
    /// ``encode(integrity:fingerprint:paddingByte:)`` and checked with ``verifyIntegrity(key:)``.
    public var attributes: [StunAttribute]

    /// Comprehension-required attribute types (below 0x8000) this decoder does not know; a server answers
    /// such a request with 420 Unknown Attribute listing them.
    public internal(set) var unknownComprehensionRequired: [UInt16] = []

    /// The bytes this message was decoded from, kept to verify integrity and fingerprint.
    public internal(set) var decodedBytes: [UInt8]?
    /// Where MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT start in `decodedBytes`.
    var integrityOffset: Int?
    var integritySha256Offset: Int?
    var fingerprintOffset: Int?

    public init(class messageClass: StunClass, method: StunMethod, transactionId: TransactionId,
                attributes: [StunAttribute] = []) {
        self.messageClass = messageClass
        self.method = method
        self.transactionId = transactionId
        self.attributes = attributes
    }

    /// Whether the decoded message carried MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    public var hasIntegrity: Bool { integrityOffset != nil || integritySha256Offset != nil }

    /// Whether the decoded message carried FINGERPRINT.
    public var hasFingerprint: Bool { fingerprintOffset != nil }

    /// The first attribute matching `extract`, e.g. `message.first { if case .realm(let r) = $0 { r } else { nil } }`.
    public func first<T>(_ extract: (StunAttribute) -> T?) -> T? {
        for attribute in attributes {
            if let value = extract(attribute) { return value }
        }
        return nil
    }

    public static func == (lhs: StunMessage, rhs: StunMessage) -> Bool {
        lhs.messageClass == rhs.messageClass && lhs.method == rhs.method && lhs.transactionId == rhs.transactionId
            && lhs.attributes == rhs.attributes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(messageClass)
        hasher.combine(method)
        hasher.combine(transactionId)
        hasher.combine(attributes)
    }
}

/// STUN's four message classes.
public enum StunClass: UInt8, Hashable, Sendable, CaseIterable {
    case request = 0b00
    case indication = 0b01
    case successResponse = 0b10
    case errorResponse = 0b11
}

/// A STUN method (12 bits).
public struct StunMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue & 0x0FFF }

    public static let binding = StunMethod(rawValue: 0x001)
    public static let allocate = StunMethod(rawValue: 0x003)
    public static let refresh = StunMethod(rawValue: 0x004)
    public static let send = StunMethod(rawValue: 0x006)
    public static let data = StunMethod(rawValue: 0x007)
    public static let createPermission = StunMethod(rawValue: 0x008)
    public static let channelBind = StunMethod(rawValue: 0x009)

    public var description: String {
        switch self {
        case .binding: "Binding"
        case .allocate: "Allocate"
        case .refresh: "Refresh"
        case .send: "Send"
        case .data: "Data"
        case .createPermission: "CreatePermission"
        case .channelBind: "ChannelBind"
        default: "method 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// The 96-bit transaction id.
public struct TransactionId: Hashable, Sendable, CustomStringConvertible {
    public var bytes: (UInt32, UInt32, UInt32)

    public init(bytes: (UInt32, UInt32, UInt32)) {
        self.bytes = bytes
    }

    /// From 12 bytes; `nil` for another length.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 12 else { return nil }
        var value: (UInt32, UInt32, UInt32) = (0, 0, 0)
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes) }
        self.bytes = value
    }

    /// A random id from `generator` (the system's CSPRNG unless a test seeds one).
    public static func random(using generator: inout some RandomNumberGenerator) -> TransactionId {
        TransactionId(bytes: (.random(in: .min ... .max, using: &generator), .random(in: .min ... .max, using: &generator),
                              .random(in: .min ... .max, using: &generator)))
    }

    public static func random() -> TransactionId {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    public var byteArray: [UInt8] { withUnsafeBytes(of: bytes) { Array($0) } }

    public static func == (lhs: TransactionId, rhs: TransactionId) -> Bool {
        lhs.bytes.0 == rhs.bytes.0 && lhs.bytes.1 == rhs.bytes.1 && lhs.bytes.2 == rhs.bytes.2
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(bytes.0)
        hasher.combine(bytes.1)
        hasher.combine(bytes.2)
    }

    public var description: String {
        byteArray.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// STUN's fixed values.
public enum StunConstants {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerLength = 20
    public static let fingerprintXor: UInt32 = 0x5354_554E
}
