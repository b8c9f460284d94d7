import IpPacket
import PropertyBased
import TestSupport
import Testing

@Suite(.offPool) struct MutationAndBuilderTests {
    let client = IpAddress("100.64.0.1")!
    let resource = IpAddress("192.0.2.10")!
    let v6Client = IpAddress("fd00:2021:1111::1")!
    let v6Resource = IpAddress("2001:db8::10")!

    /// RFC 1624 §4: checksum 0xDD2F, word 0x5555 replaced by 0x3285, gives 0xFFFF (not 0x0000).
    @Test func incrementalChecksumMatchesRfc1624Example() {
        var checksum = IncrementalChecksum(checksum: 0xDD2F)
        checksum.replace(old: UInt16(0x5555), new: 0x3285)
        #expect(checksum.finalized == 0xFFFF)
        var roundTrip = IncrementalChecksum(checksum: 0x1234)
        roundTrip.replace(old: UInt16(0xABCD), new: 0x0001)
        roundTrip.replace(old: UInt16(0x0001), new: 0xABCD)
        #expect(roundTrip.finalized == 0x1234)
    }

    @Test func fullChecksumHandlesOddLengthsAndWideSums() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        let bytes: [UInt8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
        bytes.withUnsafeBytes { #expect(InternetChecksum.fold(InternetChecksum.sum($0)) == 0xddf2) }
        let odd: [UInt8] = [0x01, 0x02, 0x03]  // 0x0102 + 0x0300
        odd.withUnsafeBytes { #expect(InternetChecksum.fold(InternetChecksum.sum($0)) == 0x0402) }
        // 639 words of 0xFFFF (one's complement zero) plus the odd byte padded: 0xFF00.
        let ones = [UInt8](repeating: 0xFF, count: 1279)
        ones.withUnsafeBytes { #expect(InternetChecksum.fold(InternetChecksum.sum($0)) == 0xFF00) }
    }

    /// The eight-bytes-at-a-time sum equals a word-by-word RFC 1071 reference at every length and alignment.
    @Test func fastSumMatchesWordByWordReference() async {
        await propertyCheck(count: 300, input: Gen.uint8().array(of: 0...1400), Gen.int(in: 0...7)) { bytes, skip in
            let data = Array(bytes.dropFirst(min(skip, bytes.count)))
            var reference: UInt64 = 0
            var index = 0
            while index + 1 < data.count {
                reference += UInt64(data[index]) << 8 | UInt64(data[index + 1])
                index += 2
            }
            if index < data.count { reference += UInt64(data[index]) << 8 }
            data.withUnsafeBytes { raw in
                #expect(InternetChecksum.fold(InternetChecksum.sum(raw)) == InternetChecksum.fold(reference))
            }
        }
    }

    @Test func addressOfTheOtherFamilyIsRefusedAndChangesNothing() throws {
        var packet = try IpPacket.udp(source: client, destination: resource, sourcePort: 1, destinationPort: 2, payload: [1])
        let before = packet.bytes
        #expect(throws: IpPacketError(.notIPv4, context: packet.errorContextForTest)) { try packet.setSource(v6Client) }
        #expect(packet.bytes == before)
        var v6 = try IpPacket.udp(source: v6Client, destination: v6Resource, sourcePort: 1, destinationPort: 2, payload: [1])
        #expect(throws: IpPacketError(.notIPv6, context: v6.errorContextForTest)) { try v6.setDestination(client) }
    }

    /// A zero UDP checksum over IPv4 means "not computed" and stays zero through NAT.
    @Test func zeroIpv4UdpChecksumIsKept() throws {
        var bytes = try IpPacket.udp(source: client, destination: resource, sourcePort: 53, destinationPort: 9, payload: [7, 7]).bytes
        bytes[26] = 0
        bytes[27] = 0
        var packet = try IpPacket(copying: bytes)
        try packet.translateDestination(IpAddress("100.96.0.9")!, sourceKey: 999)
        try packet.translateSource(IpAddress("100.96.0.8")!, destinationKey: 998)
        #expect(packet.udp?.checksum == 0)
        #expect(packet.hasValidChecksums)
        #expect(packet.ipv4Header.map { InternetChecksum.equivalent($0.checksum, packet.expectedIPv4HeaderChecksum) } == true)
    }

    @Test func computedZeroUdpChecksumIsSentAsAllOnes() throws {
        // Find a payload whose UDP checksum computes to zero: adjust two bytes until it does.
        var payload: [UInt8] = [0, 0]
        var packet = try IpPacket.udp(source: client, destination: resource, sourcePort: 1, destinationPort: 2, payload: payload)
        let checksum = try #require(packet.udp?.checksum)
        // Adding the stored checksum's value to the data makes the new sum 0xFFFF, i.e. a computed zero.
        payload = [UInt8(checksum >> 8), UInt8(checksum & 0xFF)]
        packet = try IpPacket.udp(source: client, destination: resource, sourcePort: 1, destinationPort: 2, payload: payload)
        #expect(packet.udp?.checksum == 0xFFFF)
        #expect(packet.hasValidChecksums)
    }

    @Test func ecnMergeFollowsRfc6040() throws {
        let outers = Ecn.allCases
        for inner in Ecn.allCases {
            for outer in outers {
                var packet = try IpPacket.udp(source: client, destination: resource, sourcePort: 1, destinationPort: 2, payload: [1])
                packet.setEcn(inner)
                packet.applyEcnFromTransport(outer)
                let expected: Ecn = (outer == .ce && (inner == .ect0 || inner == .ect1)) ? .ce : inner
                #expect(packet.ecn == expected, "inner \(inner) outer \(outer)")
                #expect(packet.hasValidChecksums)
            }
        }
    }

    @Test func echoIdentifierIsTheIcmpKeyAndOtherIcmpHasNone() throws {
        var echo = try IpPacket.icmpEchoRequest(source: v6Client, destination: v6Resource, identifier: 5, sequence: 9, payload: [1, 2])
        echo.setSourceKey(77)
        #expect(echo.icmpv6Message == .echoRequest(identifier: 77, sequence: 9))
        #expect(echo.hasValidChecksums)
        let unreachable = try IpPacket.icmpDestinationUnreachableNetwork(for: echo)
        var copy = unreachable
        copy.setSourceKey(1)
        #expect(copy == unreachable, "non-echo ICMP has no key to set")
        #expect(throws: IpPacketError(.unsupportedIcmpv6Type(1), context: unreachable.errorContextForTest)) {
            try unreachable.sourceKey
        }
    }

    @Test func icmpVocabularyDecodesLosslessly() {
        #expect(Icmpv4Message(type: 3, code: 4, restOfHeader: 1280) == .destinationUnreachable(.fragmentationNeeded(nextHopMtu: 1280)))
        #expect(Icmpv4Message(type: 3, code: 13, restOfHeader: 0) == .destinationUnreachable(.filterProhibited))
        #expect(Icmpv4Message(type: 8, code: 1, restOfHeader: 5) == .unknown(type: 8, code: 1, restOfHeader: 5), "echo with a code is not echo")
        #expect(Icmpv6Message(type: 2, code: 0, restOfHeader: 1280) == .packetTooBig(mtu: 1280))
        #expect(Icmpv6Message(type: 1, code: 3, restOfHeader: 0) == .destinationUnreachable(.address))
        #expect(Icmpv6Message(type: 135, code: 0, restOfHeader: 0) == .unknown(type: 135, code: 0, restOfHeader: 0))
    }

    @Test func unreachableErrorsQuoteAsTheSpecSays() throws {
        let big = try IpPacket.udp(source: client, destination: resource, sourcePort: 5, destinationPort: 6,
                                   payload: [UInt8](repeating: 9, count: 1212))
        let v4 = try IpPacket.icmpDestinationUnreachableProhibited(for: big)
        #expect(v4.count == 20 + 8 + 28, "IPv4 quotes the header and 8 bytes")
        #expect(v4.ttl == 20)
        #expect(v4.icmpv4Message == .destinationUnreachable(.filterProhibited))
        let failed = try #require(try v4.icmpError())
        #expect(failed.isProhibited)
        #expect(failed.failedPacket.sourceKey == .udp(5))
        #expect(failed.description == "Destination is unreachable (code: 13)")

        let bigV6 = try IpPacket.udp(source: v6Client, destination: v6Resource, sourcePort: 5, destinationPort: 6,
                                     payload: [UInt8](repeating: 9, count: 1232))
        let v6 = try IpPacket.icmpDestinationUnreachableNetwork(for: bigV6)
        #expect(v6.count == 1280, "IPv6 quotes what fits in 1280 bytes")
        #expect(try v6.icmpError()?.isNetworkUnreachable == true)
        #expect(try v6.icmpError()?.failedPacket.destination == v6Resource)
    }

    @Test func icmpErrorsWithUnreadableQuotesAreTypedErrors() throws {
        let query = try IpPacket.udp(source: client, destination: resource, sourcePort: 5, destinationPort: 6, payload: [1])
        // Quote only 22 bytes: IPv4 header plus 2 bytes of UDP, too few for the ports.
        let quote = Array(query.bytes.prefix(22))
        let error = try IpPacket.icmp(source: resource, destination: client, type: 3, code: 1, restOfHeader: 0, payload: quote)
        #expect(throws: IpPacketError(.embeddedL4TooShort(protocol: 17, available: 2), context: error.errorContextForTest)) {
            try error.icmpError()
        }
        let v6Quote = try IpPacket.icmp(source: resource, destination: client, type: 3, code: 1, restOfHeader: 0,
                                        payload: [0x60] + [UInt8](repeating: 0, count: 40))
        #expect(throws: IpPacketError(.embeddedVersionMismatch(outer: .v4, embedded: 6), context: v6Quote.errorContextForTest)) {
            try v6Quote.icmpError()
        }
        let redirect = try IpPacket.icmp(source: resource, destination: client, type: 5, code: 0, restOfHeader: 0, payload: quote)
        #expect(throws: IpPacketError(.unsupportedIcmpMessage(type: 5, code: 0), context: redirect.errorContextForTest)) {
            try redirect.icmpError()
        }
        let echoReplyQuote = try IpPacket.icmpEchoReply(source: client, destination: resource, identifier: 1, sequence: 1, payload: [UInt8]())
        let quotingReply = try IpPacket.icmpDestinationUnreachableProhibited(for: echoReplyQuote)
        #expect(throws: IpPacketError(.embeddedIcmpNotEchoRequest(type: 0, code: 0), context: quotingReply.errorContextForTest)) {
            try quotingReply.icmpError()
        }
        var notAnError = query
        #expect(throws: IpPacketError(.notAnIcmpError, context: query.errorContextForTest)) {
            try notAnError.translateFailedPacket(destination: client, sourceKeyValue: 1)
        }
    }

    @Test func buildersRefuseWhatTheyCannotBuild() {
        #expect(throws: IpPacketError(.mixedVersions)) {
            try IpPacket.udp(source: client, destination: v6Resource, sourcePort: 1, destinationPort: 2, payload: [UInt8]())
        }
        #expect(throws: IpPacketError(.payloadTooLarge(packetLength: 1281))) {
            try IpPacket.udp(source: client, destination: resource, sourcePort: 1, destinationPort: 2,
                             payload: [UInt8](repeating: 0, count: 1253))
        }
        #expect(throws: IpPacketError(.tcpOptionsNotMultipleOfFour(length: 3))) {
            try IpPacket.tcp(source: client, destination: resource, sourcePort: 1, destinationPort: 2, flags: .syn,
                             options: [1, 1, 1], payload: [UInt8]())
        }
        #expect(throws: IpPacketError(.tcpOptionsTooLong(length: 44))) {
            try IpPacket.tcp(source: client, destination: resource, sourcePort: 1, destinationPort: 2, flags: .syn,
                             options: [UInt8](repeating: 1, count: 44), payload: [UInt8]())
        }
    }

    @Test func largestUdpPayloadFitsExactly() throws {
        let packet = try IpPacket.udp(source: client, destination: resource, sourcePort: 53, destinationPort: 9,
                                      payload: [UInt8](repeating: 0, count: PacketLimits.maxIpPacketSize - 28))
        #expect(packet.count == 1280)
        #expect(PacketLimits.maxUdpPayloadSize == 1212)
        #expect(PacketLimits.bufferSize == 1316)
    }

    @Test func poolRecyclesOnlyUnsharedBuffers() throws {
        let pool = PacketBufferPool(limit: 2)
        let packet = try IpPacket.udp(source: client, destination: resource, sourcePort: 1, destinationPort: 2, payload: [1], pool: pool)
        let copy = packet
        pool.recycle(consume packet)
        #expect(pool.idleCount == 0, "a buffer still shared with a copy is not reused")
        pool.recycle(consume copy)
        #expect(pool.idleCount == 1)
        let reused = pool.take()
        #expect(pool.idleCount == 0)
        #expect(reused.capacity == PacketLimits.bufferSize)
    }

    @Test func descriptionIsOneLine() throws {
        let syn = try IpPacket.tcp(source: client, destination: resource, sourcePort: 40000, destinationPort: 443,
                                   sequenceNumber: 1, flags: .syn, payload: [UInt8]())
        #expect(syn.description == "IPv4 100.64.0.1 -> 192.0.2.10 TCP 40000 -> 443 seq 1 len 0 syn")
        var marked = try IpPacket.udp(source: v6Client, destination: v6Resource, sourcePort: 1, destinationPort: 53, payload: [1, 2])
        marked.setEcn(.ce)
        #expect(marked.description == "IPv6 fd00:2021:1111::1 -> 2001:db8::10 UDP 1 -> 53 len 2 ecn CE")
    }
}

@Suite struct AddressTests {
    @Test func ipv6TextFollowsRfc5952() {
        #expect(IPv6Address("2001:0db8:0000:0000:0000:0000:0002:0001")?.description == "2001:db8::2:1")
        #expect(IPv6Address("2001:db8:0:1:1:1:1:1")?.description == "2001:db8:0:1:1:1:1:1", "a single zero group is not compressed")
        #expect(IPv6Address("2001:0:0:1:0:0:0:1")?.description == "2001:0:0:1::1", "the longest run wins")
        #expect(IPv6Address("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1", "the first of equal runs wins")
        #expect(IPv6Address("::")?.description == "::")
        #expect(IPv6Address("::1")?.description == "::1")
        #expect(IPv6Address("fd00:2021:1111:8000::")?.description == "fd00:2021:1111:8000::")
        #expect(IPv6Address("::ffff:192.0.2.1")?.description == "::ffff:192.0.2.1")
    }

    @Test func invalidTextIsRejected() {
        for text in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.1.1.1", "1..1.1", "a.b.c.d"] {
            #expect(IPv4Address(text) == nil, "\(text)")
        }
        for text in [":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "g::1", "::1.2.3"] {
            #expect(IPv6Address(text) == nil, "\(text)")
        }
        #expect(IpAddress("fd00::1") == .v6(IPv6Address(high: 0xfd00 << 48, low: 1)))
        #expect(IpAddress("100.64.0.1") == .v4(IPv4Address(100, 64, 0, 1)))
    }
}
