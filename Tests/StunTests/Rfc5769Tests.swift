import SansIO
import Stun
import Testing

/// RFC 5769's sample messages: they decode, verify, and our encoder reproduces them byte for byte.
@Suite struct Rfc5769Tests {
    static let password = "VOkJxbRl1RmTxUk/WvJxBt"
    static let transactionId = TransactionId(hex("b7e7a701bc34d686fa87dfae"))!

    static let sampleRequest = hex("""
        000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff\
        80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249\
        c1b571a280280004e57a3bcf
        """)
    static let sampleIPv4Response = hex("""
        0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643\
        000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96
        """)
    static let sampleIPv6Response = hex("""
        010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9fa\
        a5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c
        """)
    static let sampleLongTermRequest = hex("""
        000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b900000015001c\
        662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f72670000080014\
        f67024656dd64a3e02b8e0712e85c9a28ca89666
        """)

    @Test func sampleRequestDecodesVerifiesAndReencodes() throws {
        let message = try StunMessage(decoding: Self.sampleRequest)
        #expect(message.messageClass == .request && message.method == .binding)
        #expect(message.transactionId == Self.transactionId)
        #expect(message.attributes == [
            .software("STUN test client"), .priority(0x6E00_01FF), .iceControlled(tieBreaker: 0x932F_F9B1_5126_3B36),
            .username("evtj:h6vY"),
        ])
        let key = StunKey.shortTerm(password: Self.password)
        #expect(message.verifyIntegrity(key: key))
        #expect(message.verifyFingerprint() == true)
        #expect(message.encode(integrity: .sha1(key: key), fingerprint: true, paddingByte: 0x20) == Self.sampleRequest)
    }

    @Test func sampleResponsesCarryTheXorMappedAddress() throws {
        let key = StunKey.shortTerm(password: Self.password)
        for (bytes, address) in [(Self.sampleIPv4Response, "192.0.2.1:32853"),
                                 (Self.sampleIPv6Response, "[2001:db8:1234:5678:11:2233:4455:6677]:32853")] {
            let message = try StunMessage(decoding: bytes)
            #expect(message.messageClass == .successResponse)
            #expect(message.attributes == [.software("test vector"), .xorMappedAddress(SocketAddress(address)!)])
            #expect(message.verifyIntegrity(key: key))
            #expect(message.verifyFingerprint() == true)
            #expect(message.encode(integrity: .sha1(key: key), fingerprint: true, paddingByte: 0x20) == bytes)
        }
    }

    /// Long-term credentials: key = MD5(username:realm:password); the password is "TheMatrIX" after SASLprep.
    @Test func sampleLongTermRequest() throws {
        let message = try StunMessage(decoding: Self.sampleLongTermRequest)
        #expect(message.attributes == [.username("マトリックス"), .nonce("f//499k954d6OL34oL9FSTvy64sA"), .realm("example.org")])
        let key = StunKey.longTerm(username: "マトリックス", realm: "example.org", password: "TheMatrIX")
        #expect(message.verifyIntegrity(key: key))
        #expect(!message.verifyIntegrity(key: StunKey.longTerm(username: "マトリックス", realm: "example.org", password: "wrong")))
        #expect(message.verifyFingerprint() == nil)
        #expect(message.encode(integrity: .sha1(key: key)) == Self.sampleLongTermRequest)
    }

    @Test func tamperingIsDetected() throws {
        let key = StunKey.shortTerm(password: Self.password)
        for index in [21, 30, 60, 90] {
            var bytes = Self.sampleRequest
            bytes[index] ^= 0x01
            guard let message = try? StunMessage(decoding: bytes) else { continue }
            #expect(!message.verifyIntegrity(key: key) || message.verifyFingerprint() == false, "byte \(index)")
            #expect(message.verifyFingerprint() == false, "byte \(index) breaks the fingerprint")
        }
        var tag = Self.sampleRequest
        tag[tag.count - 10] ^= 0x80  // inside MESSAGE-INTEGRITY
        #expect(try !StunMessage(decoding: tag).verifyIntegrity(key: key))
    }
}

func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter(\.isHexDigit).utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16) ?? 0 }
}
