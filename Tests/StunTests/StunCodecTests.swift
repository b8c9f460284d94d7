import SansIO
import Stun
import Testing

@Suite struct StunCodecTests {
    static let every: [StunAttribute] = [
        .mappedAddress(SocketAddress("192.0.2.1:3478")!), .xorMappedAddress(SocketAddress("[2001:db8::1]:50000")!),
        .username("alice:bob"), .userhash([UInt8](repeating: 7, count: 32)), .errorCode(code: 438, reason: "Stale Nonce"),
        .realm("firezone"), .nonce("abc"), .unknownAttributes([0x0042, 0x0043]), .software("snownet"),
        .alternateServer(SocketAddress("[2001:db8::2]:3478")!), .priority(0x6E00_01FF), .useCandidate,
        .iceControlled(tieBreaker: 1), .iceControlling(tieBreaker: .max), .xorPeerAddress(SocketAddress("10.0.0.1:51820")!),
        .xorRelayedAddress(SocketAddress("[2001:db8::3]:49152")!), .lifetime(seconds: 600), .channelNumber(0x4000),
        .requestedTransport(17), .data([1, 2, 3]), .requestedAddressFamily(2), .additionalAddressFamily(2),
        .other(type: 0x8055, value: [9, 9, 9, 9, 9]),
    ]

    @Test func everyAttributeRoundTripsInEveryClass() throws {
        for messageClass in StunClass.allCases {
            for method in [StunMethod.binding, .allocate, .refresh, .channelBind, .createPermission, StunMethod(rawValue: 0xABC)] {
                let message = StunMessage(class: messageClass, method: method, transactionId: .random(), attributes: Self.every)
                let bytes = message.encode(integrity: .sha256(key: [1, 2, 3]), fingerprint: true)
                let decoded = try StunMessage(decoding: bytes)
                #expect(decoded == message)
                #expect(decoded.verifyIntegrity(key: [1, 2, 3]))
                #expect(decoded.verifyFingerprint() == true)
                #expect(decoded.unknownComprehensionRequired.isEmpty)
            }
        }
    }

    @Test func unknownAttributesAreReportedOrSkipped() throws {
        let message = StunMessage(class: .request, method: .binding, transactionId: .random(),
                                  attributes: [.other(type: 0x0077, value: [1]), .other(type: 0x8077, value: [2])])
        let decoded = try StunMessage(decoding: message.encode())
        #expect(decoded.unknownComprehensionRequired == [0x0077], "comprehension-required: reported")
        #expect(decoded.attributes == [.other(type: 0x8077, value: [2])], "optional: kept verbatim")
    }

    @Test func attributesAfterIntegrityAreIgnoredExceptFingerprint() throws {
        var bytes = StunMessage(class: .request, method: .binding, transactionId: .random(), attributes: [.username("u")])
            .encode(integrity: .sha1(key: [1]))
        // Append a SOFTWARE attribute after MESSAGE-INTEGRITY and fix the length.
        bytes += [0x80, 0x22, 0x00, 0x04] + Array("evil".utf8)
        bytes[3] = UInt8(bytes.count - 20)
        let decoded = try StunMessage(decoding: bytes)
        #expect(decoded.attributes == [.username("u")])
    }

    @Test func malformedMessagesAreTypedErrors() {
        let valid = StunMessage(class: .request, method: .binding, transactionId: .random(), attributes: [.priority(1)]).encode()
        func reason(_ bytes: [UInt8]) -> StunError.Reason? {
            guard case .failure(let error) = Result(catching: { () throws(StunError) in try StunMessage(decoding: bytes) })
            else { return nil }
            return error.reason
        }
        #expect(reason(Array(valid.prefix(19))) == .tooShort(length: 19))
        #expect(reason([0xC0] + valid.dropFirst()) == .notStun(firstByte: 0xC0))
        var cookie = valid; cookie[4] = 0
        #expect(reason(cookie) == .badMagicCookie(0x0012_A442))
        #expect(reason(valid + [0, 0, 0, 0]) == .lengthMismatch(declared: 8, actual: 32))
        var odd = valid; odd[3] = 7
        #expect(reason(odd) == .lengthNotMultipleOfFour(7))
        var longAttribute = valid; longAttribute[23] = 8
        #expect(reason(longAttribute) == .truncatedAttribute(type: 0x0024, offset: 20, length: 28))
        var shortPriority = valid; shortPriority[23] = 2
        guard case .malformedAttribute(0x0024, _)? = reason(shortPriority) else {
            Issue.record("PRIORITY of 2 bytes must be malformed")
            return
        }
        let badUtf8 = StunMessage(class: .request, method: .binding, transactionId: .random(),
                                  attributes: [.other(type: StunAttributeType.username, value: [0xFF, 0xFE])]).encode()
        guard case .malformedAttribute(0x0006, let why)? = reason(badUtf8) else {
            Issue.record("invalid UTF-8 username")
            return
        }
        #expect(why.contains("UTF-8"))
        let error = StunError(.lengthMismatch(declared: 8, actual: 32), messageType: 1, transactionId: TransactionId(bytes: (0, 0, 0)))
        #expect(error.description.hasPrefix("STUN message type 0x1 (transaction 000000000000000000000000): "))
    }

    @Test func classifierSortsDatagrams() {
        let stun = StunMessage(class: .request, method: .binding, transactionId: .random()).encode()
        let channelData: [UInt8] = [0x40, 0x00, 0x00, 0x02, 0xAB, 0xCD]
        let wireGuard: [UInt8] = [0x04, 0, 0, 0] + [UInt8](repeating: 0, count: 28)
        let wireGuardInitiation: [UInt8] = [0x01, 0, 0, 0] + [UInt8](repeating: 0, count: 144)
        stun.withUnsafeBytes { #expect(DatagramKind.classify($0) == .stun) }
        channelData.withUnsafeBytes { #expect(DatagramKind.classify($0) == .channelData) }
        wireGuard.withUnsafeBytes { #expect(DatagramKind.classify($0) == .other) }
        wireGuardInitiation.withUnsafeBytes { #expect(DatagramKind.classify($0) == .other, "no magic cookie") }
        [UInt8]([0x40, 0, 0, 9, 1]).withUnsafeBytes { #expect(DatagramKind.classify($0) == .other, "short ChannelData") }
        [UInt8]().withUnsafeBytes { #expect(DatagramKind.classify($0) == .other) }
    }

    /// Sends at 0, 1, 2.5 and 4.75 s; abandoned at 8.125 s.
    @Test func retransmissionScheduleMatchesTheSpec() {
        let start = Instant(nanoseconds: 0)
        var transaction = StunTransaction(now: start)
        var sends: [Duration] = [.zero]
        var abandonedAt: Duration?
        var now = start
        while abandonedAt == nil {
            now = transaction.deadline
            switch transaction.handleTimeout(now: now) {
            case .retransmit: sends.append(now - start)
            case .abandon: abandonedAt = now - start
            case .wait: Issue.record("the deadline is due")
            }
        }
        #expect(sends == [.zero, .seconds(1), .milliseconds(2500), .milliseconds(4750)])
        #expect(abandonedAt == .milliseconds(8125))
        var probe = StunTransaction(schedule: .probe, now: start)
        #expect(probe.handleTimeout(now: start + .milliseconds(999)) == .wait)
        #expect(probe.handleTimeout(now: start + .seconds(1)) == .abandon)
    }

    @Test func longTermKeyIsMd5OfTheTriple() {
        // printf 'user:realm:pass' | md5sum
        #expect(StunKey.longTerm(username: "user", realm: "realm", password: "pass")
            == hex("8493fbc53ba582fb4c044c456bdc40eb"))
    }
}
