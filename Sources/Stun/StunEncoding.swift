import Crypto
import SansIO

extension StunMessage {
    /// The message's bytes: header, attributes (each padded to 4 bytes with `paddingByte`), then
    /// MESSAGE-INTEGRITY(-SHA256) over everything before it with the length adjusted to include it, then
    /// FINGERPRINT (CRC-32 XOR 0x5354554e) likewise.
    public func encode(integrity: StunIntegrity? = nil, fingerprint: Bool = false, paddingByte: UInt8 = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        let method = method.rawValue
        let classBits = UInt16(messageClass.rawValue)
        let type = method & 0x000F | (method & 0x0070) << 1 | (method & 0x0F80) << 2 | (classBits & 1) << 4 | (classBits & 2) << 7
        bytes.appendUInt16(type)
        bytes.appendUInt16(0)
        bytes.appendUInt32(StunConstants.magicCookie)
        bytes += transactionId.byteArray
        for attribute in attributes {
            append(attribute.type, value: valueBytes(attribute), to: &bytes, paddingByte: paddingByte)
        }
        if let integrity {
            let (attributeType, length) = switch integrity {
            case .sha1: (StunAttributeType.messageIntegrity, 20)
            case .sha256: (StunAttributeType.messageIntegritySha256, 32)
            }
            setLength(&bytes, bytes.count - StunConstants.headerLength + 4 + length)
            let mac = Self.hmac(integrity, over: bytes)
            append(attributeType, value: mac, to: &bytes, paddingByte: paddingByte)
        }
        if fingerprint {
            setLength(&bytes, bytes.count - StunConstants.headerLength + 8)
            var value: [UInt8] = []
            value.appendUInt32(Crc32.checksum(bytes) ^ StunConstants.fingerprintXor)
            append(StunAttributeType.fingerprint, value: value, to: &bytes, paddingByte: paddingByte)
        }
        setLength(&bytes, bytes.count - StunConstants.headerLength)
        return bytes
    }

    /// Whether the decoded message's MESSAGE-INTEGRITY (or, failing that, MESSAGE-INTEGRITY-SHA256) is the
    /// HMAC of its prefix under `key`. `false` when it has none. Constant-time comparison.
    public func verifyIntegrity(key: [UInt8]) -> Bool {
        guard let bytes = decodedBytes else { return false }
        let (offset, integrity, length): (Int, StunIntegrity, Int)
        if let sha1 = integrityOffset {
            (offset, integrity, length) = (sha1, .sha1(key: key), 20)
        } else if let sha256 = integritySha256Offset {
            (offset, integrity, length) = (sha256, .sha256(key: key), Int(bytes.uint16(at: sha256 + 2)))
        } else {
            return false
        }
        var prefix = Array(bytes[..<offset])
        setLength(&prefix, offset - StunConstants.headerLength + 4 + Int(bytes.uint16(at: offset + 2)))
        let expected = Self.hmac(integrity, over: prefix).prefix(length)
        let received = bytes[(offset + 4)..<(offset + 4 + length)]
        guard expected.count == received.count else { return false }
        return zip(expected, received).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Whether FINGERPRINT matches: `nil` when the decoded message has none.
    public func verifyFingerprint() -> Bool? {
        guard let bytes = decodedBytes, let offset = fingerprintOffset else { return nil }
        var prefix = Array(bytes[..<offset])
        setLength(&prefix, offset - StunConstants.headerLength + 8)
        return Crc32.checksum(prefix) ^ StunConstants.fingerprintXor == bytes.uint32(at: offset + 4)
    }

    // MARK: Details

    private static func hmac(_ integrity: StunIntegrity, over bytes: [UInt8]) -> [UInt8] {
        switch integrity {
        case .sha1(let key):
            Array(HMAC<Insecure.SHA1>.authenticationCode(for: bytes, using: SymmetricKey(data: key)))
        case .sha256(let key):
            Array(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key)))
        }
    }

    private func setLength(_ bytes: inout [UInt8], _ length: Int) {
        bytes[2] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[3] = UInt8(truncatingIfNeeded: length)
    }

    private func append(_ type: UInt16, value: [UInt8], to bytes: inout [UInt8], paddingByte: UInt8) {
        bytes.appendUInt16(type)
        bytes.appendUInt16(UInt16(truncatingIfNeeded: value.count))
        bytes += value
        bytes += [UInt8](repeating: paddingByte, count: (4 - value.count % 4) % 4)
    }

    private func valueBytes(_ attribute: StunAttribute) -> [UInt8] {
        var value: [UInt8] = []
        switch attribute {
        case .mappedAddress(let address), .alternateServer(let address):
            value = encodeAddress(address, xor: false)
        case .xorMappedAddress(let address), .xorPeerAddress(let address), .xorRelayedAddress(let address):
            value = encodeAddress(address, xor: true)
        case .username(let text), .realm(let text), .nonce(let text), .software(let text):
            value = Array(text.utf8)
        case .userhash(let bytes), .data(let bytes), .other(_, let bytes):
            value = bytes
        case let .errorCode(code, reason):
            value = [0, 0, UInt8((code / 100) & 0x07), UInt8(code % 100)] + Array(reason.utf8)
        case .unknownAttributes(let types):
            for type in types { value.appendUInt16(type) }
        case .priority(let priority):
            value.appendUInt32(priority)
        case .lifetime(let seconds):
            value.appendUInt32(seconds)
        case .useCandidate:
            break
        case .iceControlled(let tieBreaker), .iceControlling(let tieBreaker):
            value.appendUInt32(UInt32(tieBreaker >> 32))
            value.appendUInt32(UInt32(tieBreaker & 0xFFFF_FFFF))
        case .channelNumber(let number):
            value.appendUInt16(number)
            value.appendUInt16(0)
        case .requestedTransport(let number):
            value = [number, 0, 0, 0]
        case .requestedAddressFamily(let family), .additionalAddressFamily(let family):
            value = [family, 0, 0, 0]
        }
        return value
    }

    private func encodeAddress(_ address: SocketAddress, xor: Bool) -> [UInt8] {
        var value: [UInt8] = [0]
        let portMask: UInt16 = xor ? UInt16(StunConstants.magicCookie >> 16) : 0
        switch address.ip {
        case .v4(let v4):
            value.append(0x01)
            value.appendUInt16(address.port ^ portMask)
            value.appendUInt32(v4.value ^ (xor ? StunConstants.magicCookie : 0))
        case .v6(let v6):
            value.append(0x02)
            value.appendUInt16(address.port ^ portMask)
            var bytes: [UInt8] = []
            bytes.appendUInt32(UInt32(v6.high >> 32))
            bytes.appendUInt32(UInt32(v6.high & 0xFFFF_FFFF))
            bytes.appendUInt32(UInt32(v6.low >> 32))
            bytes.appendUInt32(UInt32(v6.low & 0xFFFF_FFFF))
            if xor {
                let mask = withUnsafeBytes(of: StunConstants.magicCookie.bigEndian) { Array($0) } + transactionId.byteArray
                for index in 0..<16 { bytes[index] ^= mask[index] }
            }
            value += bytes
        }
        return value
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib), for FINGERPRINT.
enum Crc32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        return crc
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }
}
