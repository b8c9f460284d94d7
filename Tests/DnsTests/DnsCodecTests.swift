import Dns
import IpPacket
import Testing

@Suite struct DnsCodecTests {
    let header: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]

    func reason(_ bytes: [UInt8]) -> DnsError.Reason? {
        guard case .failure(let error) = Result(catching: { () throws(DnsError) in try DnsMessage(decoding: bytes) }) else { return nil }
        return error.reason
    }

    @Test func hostileNamesAreRejected() {
        // A pointer to itself, a forward pointer, a pointer past the end, a reserved label type.
        #expect(reason(header + [0xC0, 12, 0, 1, 0, 1]) == .badPointer(target: 12))
        #expect(reason(header + [0xC0, 20, 0, 1, 0, 1, 0, 0]) == .badPointer(target: 20))
        #expect(reason(header + [0x80, 0, 0, 1, 0, 1]) == .reservedLabelType(0x80))
        // Two pointers pointing at each other cannot both point backwards: rejected without looping.
        let loop = header + [1, 0x61, 0xC0, 14, 0, 1, 0, 1]
        #expect(reason(loop) == .badPointer(target: 14))
        // A name of 5 × 63-byte labels exceeds 255 bytes.
        let label: [UInt8] = [63] + [UInt8](repeating: 0x61, count: 63)
        let long: [UInt8] = (0..<5).reduce(into: [UInt8]()) { bytes, _ in bytes += label } + [0]
        #expect(reason(header + long + [0, 1, 0, 1]) == .nameTooLong)
        #expect(reason(header + [5, 0x61, 0x62, 0x63, 0x64]) == .truncated(needed: 1), "a 5-byte label with 4 bytes left")
    }

    @Test func countsAreNeverTrusted() {
        var inflated = header
        inflated[5] = 0xFF  // 255 questions, none present
        #expect(reason(inflated) == .countsExceedMessage(questions: 255, answers: 0, authority: 0, additional: 0))
        var answers = header + [0, 0, 1, 0, 1]
        answers[7] = 40
        guard case .countsExceedMessage? = reason(answers) else {
            Issue.record("40 answers in 5 bytes must be refused before parsing")
            return
        }
        #expect(reason(header + [0, 0, 1, 0, 1, 9]) == .trailingBytes(1))
    }

    @Test func compressionIsUsedAndReadBack() throws {
        let name = try #require(DnsName("app.example.com"))
        var message = DnsMessage(id: 1, flags: DnsFlags(rawValue: 0x8180), questions: [DnsQuestion(name: name, type: .a)])
        message.answers = (1...4).map { DnsRecord(name: name, ttl: 1, data: .a(IPv4Address(100, 96, 0, UInt8($0)))) }
        message.answers.append(DnsRecord(name: try #require(DnsName("www.example.com")), ttl: 1, data: .cname(name)))
        let bytes = message.encode()
        // Question name 17 bytes, then each answer's owner is a 2-byte pointer.
        #expect(bytes.count == 12 + 17 + 4 + 4 * (2 + 10 + 4) + (6 + 10 + 2))
        #expect(try DnsMessage(decoding: bytes) == message)
    }

    @Test func oversizedUdpAnswersAreTruncatedToTheQuestionWithTc() throws {
        let name = try #require(DnsName("big.example.com"))
        var message = DnsMessage(id: 9, flags: DnsFlags(rawValue: 0x8180), questions: [DnsQuestion(name: name, type: .txt)])
        message.answers = (0..<10).map { _ in DnsRecord(name: name, ttl: 60, data: .txt([[UInt8](repeating: 0x78, count: 200)])) }
        let bytes = message.encode(maxSize: DnsMessage.maxUdpResponseSize)
        let decoded = try DnsMessage(decoding: bytes)
        #expect(bytes.count <= 1212)
        #expect(decoded.flags.isTruncated)
        #expect(decoded.questions == message.questions && decoded.answers.isEmpty)
        #expect(try DnsMessage(decoding: message.encode()).answers.count == 10, "TCP has room: nothing truncated")
    }

    @Test func tcpFramingFindsWholeMessages() throws {
        let query = DnsMessage(id: 5, flags: DnsFlags(rawValue: 0x0100),
                               questions: [DnsQuestion(name: try #require(DnsName("a.example.com")), type: .aaaa)])
        let framed = DnsTcpFraming.frame(query.encode())
        let stream = framed + framed.prefix(5)
        let first = try #require(DnsTcpFraming.nextMessage(in: stream))
        #expect(first.consumed == framed.count)
        #expect(try DnsMessage(decoding: first.message) == query)
        #expect(DnsTcpFraming.nextMessage(in: Array(stream[first.consumed...])) == nil, "the second is incomplete")
    }

    @Test func namesCompareWithoutCaseAndValidateLengths() {
        #expect(DnsName("App.Example.COM") == DnsName("app.example.com."))
        #expect(DnsName(".")?.description == ".")
        #expect(DnsName("a..b") == nil)
        #expect(DnsName(String(repeating: "x", count: 64) + ".com") == nil)
        #expect(DnsName(Array(repeating: String(repeating: "x", count: 63), count: 4).joined(separator: ".")) == nil)
    }
}
