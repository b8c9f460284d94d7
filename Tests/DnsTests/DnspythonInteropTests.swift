import Dns
import Foundation
import IpPacket
import TestSupport
import Testing

/// DNS messages from dnspython, an independent implementation: we decode what it accepts to the same
/// content, reject what it rejects, and it reads back everything we encode.
@Suite(.offPool) struct DnspythonInteropTests {
    struct Case: Decodable {
        var hex: String
        var valid: Bool
        var message: Content?
    }

    struct Content: Decodable, Equatable {
        var id: UInt16
        var flags: UInt16
        var rcode: UInt8
        var questions: [Question]
        var answers: [Record]
        var authority: [Record]
        var additional: [Record]
        var edns: Edns?
    }

    struct Question: Decodable, Equatable {
        var name: String
        var type: UInt16
        var `class`: UInt16
    }

    struct Record: Decodable, Equatable {
        var name: String
        var type: UInt16
        var `class`: UInt16
        var ttl: UInt32
        var address: String?
        var target: String?
        var srv: [Srv]?
        var txt: [String]?
        var rdata: String?
    }

    enum Srv: Decodable, Equatable {
        case number(Int)
        case text(String)
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) { self = .number(number) } else { self = .text(try container.decode(String.self)) }
        }
    }

    struct Edns: Decodable, Equatable {
        var payload: UInt16
        var options: Int
    }

    static let script = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Support/dnspython_cases.py").path

    static func python(_ arguments: [String], input: String? = nil) throws -> [Case] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        let output = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "dnspython script failed (is dnspython installed? scripts/bootstrap)")
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try JSONDecoder().decode(Case.self, from: Data($0.utf8))
        }
    }

    /// Our decode, described the way the script describes dnspython's.
    static func describe(_ message: DnsMessage) -> Content {
        func records(_ section: [DnsRecord]) -> [Record] {
            section.filter { $0.type != .opt }.map { record in
                var entry = Record(name: record.name.description, type: record.type.rawValue, class: record.recordClass, ttl: record.ttl)
                switch record.data {
                case .a(let address): entry.address = address.description
                case .aaaa(let address): entry.address = address.description
                case .cname(let target), .ptr(let target): entry.target = target.description
                case let .srv(priority, weight, port, target):
                    entry.srv = [.number(Int(priority)), .number(Int(weight)), .number(Int(port)), .text(target.description)]
                case .txt(let strings): entry.txt = strings.map { $0.map { String(format: "%02x", $0) }.joined() }
                case .other(_, let bytes): entry.rdata = bytes.map { String(format: "%02x", $0) }.joined()
                }
                return entry
            }
        }
        let opt = message.additional.first { $0.type == .opt }
        let options: Int = {
            guard case .other(_, let bytes)? = opt?.data else { return 0 }
            var count = 0, index = 0
            while index + 4 <= bytes.count { count += 1; index += 4 + (Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])) }
            return count
        }()
        return Content(
            id: message.id, flags: message.flags.rawValue & 0xFFF0, rcode: message.flags.rcode.rawValue,
            questions: message.questions.map { Question(name: $0.name.description, type: $0.type.rawValue, class: $0.recordClass) },
            answers: records(message.answers), authority: records(message.authority), additional: records(message.additional),
            edns: opt.map { Edns(payload: $0.recordClass, options: options) })
    }

    @Test func weDecodeWhatDnspythonEncodesAndRejectWhatItRejects() throws {
        let cases = try Self.python(["generate", "300"])
        #expect(cases.count == 300)
        var accepted = 0
        for (index, testCase) in cases.enumerated() {
            let bytes = hex(testCase.hex)
            let ours = try? DnsMessage(decoding: bytes)
            guard testCase.valid, let expected = testCase.message else {
                #expect(ours == nil, "case \(index): dnspython rejects \(testCase.hex), we accepted")
                continue
            }
            let decoded = try #require(ours, "case \(index): we rejected what dnspython accepts: \(testCase.hex)")
            var expectedContent = expected
            expectedContent.flags &= 0xFFF0
            #expect(Self.describe(decoded) == expectedContent, "case \(index)")
            accepted += 1
        }
        #expect(accepted >= 150)
    }

    @Test func dnspythonReadsWhatWeEncode() throws {
        let cases = try Self.python(["generate", "120"]).filter(\.valid)
        var encoded: [(DnsMessage, String)] = []
        for testCase in cases {
            let message = try DnsMessage(decoding: hex(testCase.hex))
            encoded.append((message, message.encode().map { String(format: "%02x", $0) }.joined()))
        }
        // Answers of the kind the stub resolver writes, truncated when too large.
        let name = try #require(DnsName("app.example.com"))
        var answer = DnsMessage(id: 7, flags: DnsFlags(rawValue: 0x8180), questions: [DnsQuestion(name: name, type: .a)])
        for index in 0..<4 { answer.answers.append(DnsRecord(name: name, ttl: 1, data: .a(IPv4Address(100, 96, 0, UInt8(index + 1))))) }
        encoded.append((answer, answer.encode().map { String(format: "%02x", $0) }.joined()))
        let readBack = try Self.python(["parse"], input: encoded.map(\.1).joined(separator: "\n") + "\n")
        #expect(readBack.count == encoded.count)
        for ((message, hexText), parsed) in zip(encoded, readBack) {
            let content = try #require(parsed.message, "dnspython rejects our encoding \(hexText)")
            var expected = content
            expected.flags &= 0xFFF0
            #expect(Self.describe(message) == expected)
        }
    }
}

func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16) ?? 0 }
}
