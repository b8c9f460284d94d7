import SansIO

extension StunMessage {
    /// Decodes a STUN message, checking the header (type bits, magic cookie, length a multiple of 4 and equal
    /// to the datagram's), every attribute's bounds and value, and that FINGERPRINT comes last. Attributes
    /// after MESSAGE-INTEGRITY other than FINGERPRINT are ignored, as RFC 8489 §14.5 requires.
    public init(decoding input: some Collection<UInt8>) throws(StunError) {
        let bytes = Array(input)
        guard bytes.count >= StunConstants.headerLength else { throw StunError(.tooShort(length: bytes.count)) }
        guard bytes[0] & 0xC0 == 0 else { throw StunError(.notStun(firstByte: bytes[0])) }
        let type = bytes.uint16(at: 0)
        let cookie = bytes.uint32(at: 4)
        guard cookie == StunConstants.magicCookie else { throw StunError(.badMagicCookie(cookie), messageType: type) }
        let transactionId = TransactionId(bytes[8..<20]) ?? TransactionId(bytes: (0, 0, 0))
        func error(_ reason: StunError.Reason) -> StunError {
            StunError(reason, messageType: type, transactionId: transactionId)
        }
        let length = Int(bytes.uint16(at: 2))
        guard length % 4 == 0 else { throw error(.lengthNotMultipleOfFour(length)) }
        guard length + StunConstants.headerLength == bytes.count else {
            throw error(.lengthMismatch(declared: length, actual: bytes.count))
        }
        self.init(class: StunClass(rawValue: UInt8((type >> 4) & 1 | (type >> 7) & 2)) ?? .request,
                  method: StunMethod(rawValue: type & 0x000F | (type >> 1) & 0x0070 | (type >> 2) & 0x0F80),
                  transactionId: transactionId)
        decodedBytes = bytes

        var offset = StunConstants.headerLength
        while offset < bytes.count {
            guard offset + 4 <= bytes.count else {
                throw error(.truncatedAttribute(type: 0, offset: offset, length: bytes.count))
            }
            let attributeType = bytes.uint16(at: offset)
            let valueLength = Int(bytes.uint16(at: offset + 2))
            let valueStart = offset + 4
            guard valueStart + valueLength <= bytes.count else {
                throw error(.truncatedAttribute(type: attributeType, offset: offset, length: bytes.count))
            }
            let value = bytes[valueStart..<(valueStart + valueLength)]
            let next = valueStart + (valueLength + 3) & ~3
            guard fingerprintOffset == nil else { throw error(.fingerprintNotLast) }
            switch attributeType {
            case StunAttributeType.fingerprint:
                guard valueLength == 4 else { throw error(.malformedAttribute(type: attributeType, why: "length \(valueLength), not 4")) }
                fingerprintOffset = offset
            case StunAttributeType.messageIntegrity where !hasIntegrity:
                guard valueLength == 20 else { throw error(.malformedAttribute(type: attributeType, why: "length \(valueLength), not 20")) }
                integrityOffset = offset
            case StunAttributeType.messageIntegritySha256 where !hasIntegrity:
                guard (16...32).contains(valueLength), valueLength % 4 == 0 else {
                    throw error(.malformedAttribute(type: attributeType, why: "length \(valueLength)"))
                }
                integritySha256Offset = offset
            case _ where hasIntegrity:
                break  // covered by neither integrity nor fingerprint: ignored
            default:
                do {
                    if let attribute = try Self.decodeAttribute(type: attributeType, value: value, transactionId: transactionId) {
                        attributes.append(attribute)
                    } else if StunAttributeType.isComprehensionRequired(attributeType) {
                        unknownComprehensionRequired.append(attributeType)
                    } else {
                        attributes.append(.other(type: attributeType, value: Array(value)))
                    }
                } catch let why {
                    throw error(.malformedAttribute(type: attributeType, why: why.description))
                }
            }
            offset = next
        }
        guard offset == bytes.count else {
            throw error(.truncatedAttribute(type: 0, offset: offset, length: bytes.count))
        }
    }

    /// One attribute's value; `nil` for a type this codec does not know.
    static func decodeAttribute(type: UInt16, value: ArraySlice<UInt8>, transactionId: TransactionId) throws(AttributeProblem) -> StunAttribute? {
        switch type {
        case StunAttributeType.mappedAddress: return .mappedAddress(try address(value, xor: nil))
        case StunAttributeType.xorMappedAddress: return .xorMappedAddress(try address(value, xor: transactionId))
        case StunAttributeType.xorPeerAddress: return .xorPeerAddress(try address(value, xor: transactionId))
        case StunAttributeType.xorRelayedAddress: return .xorRelayedAddress(try address(value, xor: transactionId))
        case StunAttributeType.alternateServer: return .alternateServer(try address(value, xor: nil))
        case StunAttributeType.username: return .username(try text(value, limit: 513))
        case StunAttributeType.realm: return .realm(try text(value, limit: 763))
        case StunAttributeType.nonce: return .nonce(try text(value, limit: 763))
        case StunAttributeType.software: return .software(try text(value, limit: 763))
        case StunAttributeType.userhash:
            guard value.count == 32 else { throw AttributeProblem("USERHASH length \(value.count), not 32") }
            return .userhash(Array(value))
        case StunAttributeType.errorCode:
            guard value.count >= 4 else { throw AttributeProblem("ERROR-CODE shorter than 4 bytes") }
            let hundreds = Int(value[value.startIndex + 2] & 0x07)
            let number = Int(value[value.startIndex + 3])
            guard (3...6).contains(hundreds), number < 100 else { throw AttributeProblem("error code \(hundreds * 100 + number) out of range") }
            return .errorCode(code: hundreds * 100 + number, reason: try text(value.dropFirst(4), limit: 763))
        case StunAttributeType.unknownAttributes:
            guard value.count % 2 == 0 else { throw AttributeProblem("UNKNOWN-ATTRIBUTES of odd length") }
            return .unknownAttributes(stride(from: value.startIndex, to: value.endIndex, by: 2).map {
                UInt16(value[$0]) << 8 | UInt16(value[$0 + 1])
            })
        case StunAttributeType.priority: return .priority(try uint32(value))
        case StunAttributeType.lifetime: return .lifetime(seconds: try uint32(value))
        case StunAttributeType.useCandidate:
            guard value.isEmpty else { throw AttributeProblem("USE-CANDIDATE carries a value") }
            return .useCandidate
        case StunAttributeType.iceControlled: return .iceControlled(tieBreaker: try uint64(value))
        case StunAttributeType.iceControlling: return .iceControlling(tieBreaker: try uint64(value))
        case StunAttributeType.channelNumber:
            guard value.count == 4 else { throw AttributeProblem("CHANNEL-NUMBER length \(value.count), not 4") }
            return .channelNumber(UInt16(value[value.startIndex]) << 8 | UInt16(value[value.startIndex + 1]))
        case StunAttributeType.requestedTransport:
            guard value.count == 4 else { throw AttributeProblem("REQUESTED-TRANSPORT length \(value.count), not 4") }
            return .requestedTransport(value[value.startIndex])
        case StunAttributeType.requestedAddressFamily, StunAttributeType.additionalAddressFamily:
            guard value.count == 4 else { throw AttributeProblem("address family length \(value.count), not 4") }
            let family = value[value.startIndex]
            guard family == 1 || family == 2 else { throw AttributeProblem("address family \(family)") }
            return type == StunAttributeType.requestedAddressFamily ? .requestedAddressFamily(family) : .additionalAddressFamily(family)
        case StunAttributeType.data: return .data(Array(value))
        default: return nil
        }
    }

    private static func address(_ value: ArraySlice<UInt8>, xor transactionId: TransactionId?) throws(AttributeProblem) -> SocketAddress {
        let bytes = Array(value)
        guard bytes.count >= 4 else { throw AttributeProblem("address shorter than 4 bytes") }
        let xorPort: UInt16 = transactionId == nil ? 0 : UInt16(StunConstants.magicCookie >> 16)
        let port = bytes.uint16(at: 2) ^ xorPort
        switch bytes[1] {
        case 0x01:
            guard bytes.count == 8 else { throw AttributeProblem("IPv4 address of \(bytes.count) bytes, not 8") }
            let xorAddress: UInt32 = transactionId == nil ? 0 : StunConstants.magicCookie
            return SocketAddress(ip: .v4(IPv4Address(bytes.uint32(at: 4) ^ xorAddress)), port: port)
        case 0x02:
            guard bytes.count == 20 else { throw AttributeProblem("IPv6 address of \(bytes.count) bytes, not 20") }
            var address = Array(bytes[4..<20])
            if let transactionId {
                let mask = withUnsafeBytes(of: StunConstants.magicCookie.bigEndian) { Array($0) } + transactionId.byteArray
                for index in 0..<16 { address[index] ^= mask[index] }
            }
            return SocketAddress(ip: .v6(IPv6Address(high: address.uint64(at: 0), low: address.uint64(at: 8))), port: port)
        default:
            throw AttributeProblem("address family 0x\(String(bytes[1], radix: 16))")
        }
    }

    private static func text(_ value: ArraySlice<UInt8>, limit: Int) throws(AttributeProblem) -> String {
        guard value.count <= limit else { throw AttributeProblem("text of \(value.count) bytes, more than \(limit)") }
        guard let string = String(validating: value, as: UTF8.self) else { throw AttributeProblem("text is not UTF-8") }
        return string
    }

    private static func uint32(_ value: ArraySlice<UInt8>) throws(AttributeProblem) -> UInt32 {
        guard value.count == 4 else { throw AttributeProblem("length \(value.count), not 4") }
        return Array(value).uint32(at: 0)
    }

    private static func uint64(_ value: ArraySlice<UInt8>) throws(AttributeProblem) -> UInt64 {
        guard value.count == 8 else { throw AttributeProblem("length \(value.count), not 8") }
        return Array(value).uint64(at: 0)
    }
}

struct AttributeProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Array where Element == UInt8 {
    func uint16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    func uint32(at offset: Int) -> UInt32 {
        UInt32(uint16(at: offset)) << 16 | UInt32(uint16(at: offset + 2))
    }

    func uint64(at offset: Int) -> UInt64 {
        UInt64(uint32(at: offset)) << 32 | UInt64(uint32(at: offset + 4))
    }

    mutating func appendUInt16(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xFF))
    }

    mutating func appendUInt32(_ value: UInt32) {
        appendUInt16(UInt16(value >> 16))
        appendUInt16(UInt16(value & 0xFFFF))
    }
}
