import IpPacket

extension DnsMessage {
    /// Decodes a message. Nothing is trusted: counts must be backed by bytes, every length must fit, names
    /// must be at most 255 bytes with labels of at most 63, compression pointers must point backwards into
    /// the message (so they cannot loop), and no bytes may follow the last record.
    public init(decoding input: some Collection<UInt8>) throws(DnsError) {
        var reader = DnsReader(bytes: Array(input))
        let id = try reader.uint16()
        let flags = DnsFlags(rawValue: try reader.uint16())
        let counts = (try reader.uint16(), try reader.uint16(), try reader.uint16(), try reader.uint16())
        // Each question takes at least 5 bytes and each record at least 11: a count beyond that is a lie.
        guard Int(counts.0) * 5 + (Int(counts.1) + Int(counts.2) + Int(counts.3)) * 11 <= reader.remaining else {
            throw DnsError(.countsExceedMessage(questions: counts.0, answers: counts.1, authority: counts.2,
                                                additional: counts.3), offset: 4)
        }
        var questions: [DnsQuestion] = []
        for _ in 0..<counts.0 {
            questions.append(DnsQuestion(name: try reader.name(), type: DnsRecordType(rawValue: try reader.uint16()),
                                         recordClass: try reader.uint16()))
        }
        func records(_ count: UInt16) throws(DnsError) -> [DnsRecord] {
            var records: [DnsRecord] = []
            for _ in 0..<count { records.append(try reader.record()) }
            return records
        }
        self.init(id: id, flags: flags, questions: questions, answers: try records(counts.1),
                  authority: try records(counts.2), additional: try records(counts.3))
        guard reader.remaining == 0 else { throw DnsError(.trailingBytes(reader.remaining), offset: reader.offset) }
    }
}

/// Why bytes are not a DNS message we accept; `offset` is where decoding stopped.
public struct DnsError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: Reason
    public var offset: Int

    public init(_ reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public enum Reason: Hashable, Sendable {
        case truncated(needed: Int)
        case countsExceedMessage(questions: UInt16, answers: UInt16, authority: UInt16, additional: UInt16)
        case labelTooLong(Int)
        case nameTooLong
        case badPointer(target: Int)
        case reservedLabelType(UInt8)
        case rdataLength(type: DnsRecordType, length: Int)
        case trailingBytes(Int)
        case tcpLengthMismatch(declared: Int, available: Int)
    }

    public var description: String {
        let what: String
        switch reason {
        case .truncated(let needed): what = "message ends where \(needed) more bytes were needed"
        case let .countsExceedMessage(q, an, ns, ar):
            what = "header counts (\(q) questions, \(an)/\(ns)/\(ar) records) exceed the message"
        case .labelTooLong(let length): what = "label of \(length) bytes exceeds 63"
        case .nameTooLong: what = "name exceeds 255 bytes"
        case .badPointer(let target): what = "compression pointer to \(target) does not point backwards into the message"
        case .reservedLabelType(let byte): what = "reserved label type 0x\(String(byte, radix: 16))"
        case let .rdataLength(type, length): what = "\(type) record data of \(length) bytes is malformed"
        case .trailingBytes(let count): what = "\(count) bytes follow the last record"
        case let .tcpLengthMismatch(declared, available): what = "TCP length \(declared) but \(available) bytes follow"
        }
        return "DNS message: \(what) (offset \(offset))"
    }
}

struct DnsReader {
    let bytes: [UInt8]
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func uint8() throws(DnsError) -> UInt8 {
        guard offset < bytes.count else { throw DnsError(.truncated(needed: 1), offset: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint16() throws(DnsError) -> UInt16 {
        UInt16(try uint8()) << 8 | UInt16(try uint8())
    }

    mutating func uint32() throws(DnsError) -> UInt32 {
        UInt32(try uint16()) << 16 | UInt32(try uint16())
    }

    mutating func take(_ count: Int) throws(DnsError) -> [UInt8] {
        guard count <= remaining else { throw DnsError(.truncated(needed: count - remaining), offset: offset) }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// A possibly compressed name. Pointers must point strictly before the position they are read at, which
    /// rules out loops; the total length is checked against 255 as labels accumulate.
    mutating func name() throws(DnsError) -> DnsName {
        var labels: [[UInt8]] = []
        var length = 1
        var position = offset
        var jumped = false
        while true {
            guard position < bytes.count else { throw DnsError(.truncated(needed: 1), offset: position) }
            let byte = bytes[position]
            switch byte & 0xC0 {
            case 0x00:
                if byte == 0 {
                    if !jumped { offset = position + 1 }
                    return DnsName(validatedLabels: labels)
                }
                let count = Int(byte)
                guard position + 1 + count <= bytes.count else {
                    throw DnsError(.truncated(needed: position + 1 + count - bytes.count), offset: position)
                }
                length += 1 + count
                guard length <= DnsName.maxLength else { throw DnsError(.nameTooLong, offset: position) }
                labels.append(Array(bytes[(position + 1)...(position + count)]))
                position += 1 + count
            case 0xC0:
                guard position + 1 < bytes.count else { throw DnsError(.truncated(needed: 1), offset: position) }
                let target = Int(byte & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < position else { throw DnsError(.badPointer(target: target), offset: position) }
                if !jumped { offset = position + 2 }
                jumped = true
                position = target
            default:
                throw DnsError(.reservedLabelType(byte), offset: position)
            }
        }
    }

    mutating func record() throws(DnsError) -> DnsRecord {
        let name = try name()
        let type = DnsRecordType(rawValue: try uint16())
        let recordClass = try uint16()
        let ttl = try uint32()
        let length = Int(try uint16())
        let start = offset
        guard length <= remaining else { throw DnsError(.truncated(needed: length - remaining), offset: offset) }
        let end = start + length
        func malformed() -> DnsError { DnsError(.rdataLength(type: type, length: length), offset: start) }
        let data: DnsRecordData
        switch type {
        case .a:
            guard length == 4 else { throw malformed() }
            let bytes = try take(4)
            data = .a(IPv4Address(bytes[0], bytes[1], bytes[2], bytes[3]))
        case .aaaa:
            guard length == 16 else { throw malformed() }
            let bytes = try take(16)
            data = .aaaa(IPv6Address(high: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) },
                                     low: bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }))
        case .cname, .ptr:
            let target = try self.name()
            guard offset == end else { throw malformed() }
            data = type == .cname ? .cname(target) : .ptr(target)
        case .srv:
            guard length >= 7 else { throw malformed() }
            let priority = try uint16(), weight = try uint16(), port = try uint16()
            let target = try self.name()
            guard offset == end else { throw malformed() }
            data = .srv(priority: priority, weight: weight, port: port, target: target)
        case .txt:
            var strings: [[UInt8]] = []
            while offset < end {
                let count = Int(try uint8())
                guard offset + count <= end else { throw malformed() }
                strings.append(try take(count))
            }
            data = .txt(strings)
        default:
            data = .other(type: type, bytes: try take(length))
        }
        return DnsRecord(name: name, recordClass: recordClass, ttl: ttl, data: data)
    }
}
