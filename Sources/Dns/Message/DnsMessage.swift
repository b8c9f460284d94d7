import IpPacket

/// A DNS message (RFC 1035): header, question and the three record sections.
///
/// ```swift
/// let query = try DnsMessage(decoding: udpPayload)          // throws DnsError; never trusts a count
/// var answer = DnsMessage.response(to: query, rcode: .noError)
/// answer.answers.append(DnsRecord(name: query.questions[0].name, ttl: 1, data: .a(IPv4Address(100, 96, 0, 1))))
/// let bytes = answer.encode(maxSize: DnsMessage.maxUdpResponseSize)   // compressed; TC if too large
/// ```
public struct DnsMessage: Hashable, Sendable {
    public var id: UInt16
    public var flags: DnsFlags
    public var questions: [DnsQuestion]
    public var answers: [DnsRecord]
    public var authority: [DnsRecord]
    public var additional: [DnsRecord]

    /// The largest UDP response the client writes to its TUN (spec `tunnel-dns.md` §1).
    public static let maxUdpResponseSize = 1212

    public init(id: UInt16, flags: DnsFlags, questions: [DnsQuestion] = [], answers: [DnsRecord] = [],
                authority: [DnsRecord] = [], additional: [DnsRecord] = []) {
        self.id = id
        self.flags = flags
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
    }

    /// An empty response to `query`: same id, question, RD and CD, QR and RA set. AD is cleared: a locally
    /// made answer is not DNSSEC-validated data.
    public static func response(to query: DnsMessage, rcode: DnsRcode) -> DnsMessage {
        var flags = query.flags
        flags.isResponse = true
        flags.recursionAvailable = true
        flags.isTruncated = false
        flags.isAuthoritative = false
        flags.authenticData = false
        flags.rcode = rcode
        return DnsMessage(id: query.id, flags: flags, questions: query.questions)
    }
}

/// The header's flag word.
public struct DnsFlags: Hashable, Sendable {
    public var isResponse = false
    public var opcode: UInt8 = 0
    public var isAuthoritative = false
    public var isTruncated = false
    public var recursionDesired = false
    public var recursionAvailable = false
    public var authenticData = false
    public var checkingDisabled = false
    public var rcode: DnsRcode = .noError

    public init() {}

    public init(rawValue: UInt16) {
        isResponse = rawValue & 0x8000 != 0
        opcode = UInt8((rawValue >> 11) & 0x0F)
        isAuthoritative = rawValue & 0x0400 != 0
        isTruncated = rawValue & 0x0200 != 0
        recursionDesired = rawValue & 0x0100 != 0
        recursionAvailable = rawValue & 0x0080 != 0
        authenticData = rawValue & 0x0020 != 0
        checkingDisabled = rawValue & 0x0010 != 0
        rcode = DnsRcode(rawValue: UInt8(rawValue & 0x0F))
    }

    public var rawValue: UInt16 {
        var value = UInt16(opcode & 0x0F) << 11 | UInt16(rcode.rawValue & 0x0F)
        if isResponse { value |= 0x8000 }
        if isAuthoritative { value |= 0x0400 }
        if isTruncated { value |= 0x0200 }
        if recursionDesired { value |= 0x0100 }
        if recursionAvailable { value |= 0x0080 }
        if authenticData { value |= 0x0020 }
        if checkingDisabled { value |= 0x0010 }
        return value
    }
}

/// A response code (the header's four bits).
public struct DnsRcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0x0F }

    public static let noError = DnsRcode(rawValue: 0)
    public static let formatError = DnsRcode(rawValue: 1)
    public static let serverFailure = DnsRcode(rawValue: 2)
    public static let nameError = DnsRcode(rawValue: 3)
    public static let notImplemented = DnsRcode(rawValue: 4)
    public static let refused = DnsRcode(rawValue: 5)

    public var description: String {
        switch self {
        case .noError: "NOERROR"
        case .formatError: "FORMERR"
        case .serverFailure: "SERVFAIL"
        case .nameError: "NXDOMAIN"
        case .notImplemented: "NOTIMP"
        case .refused: "REFUSED"
        default: "RCODE\(rawValue)"
        }
    }
}

/// A record type (a 16-bit number).
public struct DnsRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DnsRecordType(rawValue: 1)
    public static let cname = DnsRecordType(rawValue: 5)
    public static let ptr = DnsRecordType(rawValue: 12)
    public static let txt = DnsRecordType(rawValue: 16)
    public static let aaaa = DnsRecordType(rawValue: 28)
    public static let srv = DnsRecordType(rawValue: 33)
    public static let opt = DnsRecordType(rawValue: 41)
    public static let svcb = DnsRecordType(rawValue: 64)
    public static let https = DnsRecordType(rawValue: 65)

    public var description: String {
        switch self {
        case .a: "A"
        case .cname: "CNAME"
        case .ptr: "PTR"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .srv: "SRV"
        case .opt: "OPT"
        case .svcb: "SVCB"
        case .https: "HTTPS"
        default: "TYPE\(rawValue)"
        }
    }
}

public struct DnsQuestion: Hashable, Sendable {
    public var name: DnsName
    public var type: DnsRecordType
    /// Class (1 = IN). For mDNS-style queries the top bit is kept as received.
    public var recordClass: UInt16

    public init(name: DnsName, type: DnsRecordType, recordClass: UInt16 = 1) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

public struct DnsRecord: Hashable, Sendable {
    public var name: DnsName
    public var recordClass: UInt16
    public var ttl: UInt32
    public var data: DnsRecordData

    public init(name: DnsName, recordClass: UInt16 = 1, ttl: UInt32, data: DnsRecordData) {
        self.name = name
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }

    public var type: DnsRecordType { data.type }
}

/// Record data: interpreted for the types the stub resolver answers; every other type (HTTPS, SVCB, OPT's
/// options, …) is carried verbatim.
public enum DnsRecordData: Hashable, Sendable {
    case a(IPv4Address)
    case aaaa(IPv6Address)
    case cname(DnsName)
    case ptr(DnsName)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DnsName)
    /// The character-strings of a TXT record.
    case txt([[UInt8]])
    case other(type: DnsRecordType, bytes: [UInt8])

    public var type: DnsRecordType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .cname: .cname
        case .ptr: .ptr
        case .srv: .srv
        case .txt: .txt
        case .other(let type, _): type
        }
    }
}
