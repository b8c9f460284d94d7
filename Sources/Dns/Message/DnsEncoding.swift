extension DnsMessage {
    /// The message's bytes with name compression. When they exceed `maxSize`, the answer is truncated the way
    /// the client does it (spec §4.6.3): TC set and every record section dropped, leaving the question.
    public func encode(maxSize: Int = Int(UInt16.max)) -> [UInt8] {
        let full = encodeAll()
        guard full.count > maxSize else { return full }
        var truncated = DnsMessage(id: id, flags: flags, questions: questions)
        truncated.flags.isTruncated = true
        return truncated.encodeAll()
    }

    private func encodeAll() -> [UInt8] {
        var writer = DnsWriter()
        writer.uint16(id)
        writer.uint16(flags.rawValue)
        writer.uint16(UInt16(truncatingIfNeeded: questions.count))
        writer.uint16(UInt16(truncatingIfNeeded: answers.count))
        writer.uint16(UInt16(truncatingIfNeeded: authority.count))
        writer.uint16(UInt16(truncatingIfNeeded: additional.count))
        for question in questions {
            writer.name(question.name)
            writer.uint16(question.type.rawValue)
            writer.uint16(question.recordClass)
        }
        for record in answers + authority + additional { writer.record(record) }
        return writer.bytes
    }
}

/// DNS over TCP: each message is preceded by its 16-bit length (RFC 1035 §4.2.2).
public enum DnsTcpFraming {
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        [UInt8(message.count >> 8 & 0xFF), UInt8(message.count & 0xFF)] + message
    }

    /// The first complete message in `stream` and how many bytes it used, or `nil` while incomplete.
    public static func nextMessage(in stream: [UInt8]) -> (message: ArraySlice<UInt8>, consumed: Int)? {
        guard stream.count >= 2 else { return nil }
        let length = Int(stream[0]) << 8 | Int(stream[1])
        guard stream.count >= 2 + length else { return nil }
        return (stream[2..<(2 + length)], 2 + length)
    }
}

struct DnsWriter {
    var bytes: [UInt8] = []
    /// Offsets of name suffixes already written, for compression (only offsets a pointer can reach).
    var suffixes: [[[UInt8]]: Int] = [:]

    mutating func uint16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    mutating func uint32(_ value: UInt32) {
        uint16(UInt16(value >> 16))
        uint16(UInt16(value & 0xFFFF))
    }

    mutating func name(_ name: DnsName, compress: Bool = true) {
        let canonical = name.canonicalLabels
        for index in name.labels.indices {
            let suffix = Array(canonical[index...])
            if compress, let offset = suffixes[suffix] {
                uint16(0xC000 | UInt16(offset))
                return
            }
            if compress, bytes.count < 0x4000 { suffixes[suffix] = bytes.count }
            bytes.append(UInt8(name.labels[index].count))
            bytes += name.labels[index]
        }
        bytes.append(0)
    }

    mutating func record(_ record: DnsRecord) {
        name(record.name)
        uint16(record.type.rawValue)
        uint16(record.recordClass)
        uint32(record.ttl)
        let lengthOffset = bytes.count
        uint16(0)
        switch record.data {
        case .a(let address):
            uint32(address.value)
        case .aaaa(let address):
            uint32(UInt32(address.high >> 32)); uint32(UInt32(address.high & 0xFFFF_FFFF))
            uint32(UInt32(address.low >> 32)); uint32(UInt32(address.low & 0xFFFF_FFFF))
        case .cname(let target), .ptr(let target):
            name(target)
        case let .srv(priority, weight, port, target):
            uint16(priority); uint16(weight); uint16(port)
            name(target, compress: false)  // RFC 2782: no compression in SRV targets
        case .txt(let strings):
            for string in strings {
                bytes.append(UInt8(min(string.count, 255)))
                bytes += string.prefix(255)
            }
        case .other(_, let data):
            bytes += data
        }
        let length = bytes.count - lengthOffset - 2
        bytes[lengthOffset] = UInt8(length >> 8 & 0xFF)
        bytes[lengthOffset + 1] = UInt8(length & 0xFF)
    }
}
