import IpPacket
import Testing

/// Every strict construction rule of spec `tunnel-dns.md` §2.2, each shown rejecting a packet with its error.
@Suite struct StrictParsingTests {
    let v4a = IpAddress.v4(IPv4Address(10, 0, 0, 1))
    let v4b = IpAddress.v4(IPv4Address(10, 0, 0, 2))
    let v6a = IpAddress("fd00:2021:1111::1")!
    let v6b = IpAddress("fd00:2021:1111::2")!

    private func reason(_ bytes: [UInt8]) -> IpPacketError.Reason? {
        do {
            _ = try IpPacket(copying: bytes)
            return nil
        } catch {
            return error.reason
        }
    }

    private func udpV4() throws -> [UInt8] {
        try IpPacket.udp(source: v4a, destination: v4b, sourcePort: 53, destinationPort: 5353, payload: [1, 2, 3, 4]).bytes
    }

    private func udpV6() throws -> [UInt8] {
        try IpPacket.udp(source: v6a, destination: v6b, sourcePort: 53, destinationPort: 5353, payload: [1, 2, 3, 4]).bytes
    }

    /// An IPv6 packet with the given extension headers (each `[next header, length, ...]`) before `transport`.
    private func ipv6(firstNextHeader: UInt8, extensions: [UInt8], transport: [UInt8]) -> [UInt8] {
        let payloadLength = extensions.count + transport.count
        var bytes: [UInt8] = [0x60, 0, 0, 0, UInt8(payloadLength >> 8), UInt8(payloadLength & 0xFF), firstNextHeader, 64]
        bytes += hex("fd002021111100000000000000000001") + hex("fd002021111100000000000000000002")
        return bytes + extensions + transport
    }

    @Test func emptyAndOversizedPackets() throws {
        #expect(reason([]) == .empty)
        #expect(reason([UInt8](repeating: 0x45, count: 1281)) == .tooLarge(length: 1281))
        let big = try IpPacket.udp(source: v4a, destination: v4b, sourcePort: 1, destinationPort: 2, payload: [UInt8]()).bytes
            + [UInt8](repeating: 0, count: 1300)
        let error = try #require(throws: IpPacketError.self) { try IpPacket(copying: big) }
        #expect(error.description == "IPv4 packet 10.0.0.1 -> 10.0.0.2 (UDP): Packet too large (len: 1328)")
    }

    @Test func packetMustFitItsBuffer() {
        let buffer = PacketBuffer(capacity: 64)
        #expect(throws: IpPacketError(.exceedsBuffer(offset: 10, length: 60, capacity: 64))) {
            try IpPacket(buffer: buffer, offset: 10, count: 60)
        }
    }

    @Test func versionMustBeFourOrSix() {
        #expect(reason([0x50] + [UInt8](repeating: 0, count: 39)) == .unsupportedVersion(5))
        #expect(reason([0x00]) == .unsupportedVersion(0))
    }

    @Test func ipv4HeaderMustBeComplete() throws {
        var bytes = try udpV4()
        #expect(reason(Array(bytes.prefix(19))) == .truncatedIPv4Header(length: 19))
        bytes[0] = 0x44
        #expect(reason(bytes) == .ihlTooSmall(ihl: 4))
        bytes[0] = 0x4F
        #expect(reason(bytes) == .truncatedIPv4Options(headerLength: 60, length: 32))
    }

    @Test func ipv4TotalLengthMustEqualPacketLength() throws {
        let bytes = try udpV4()
        #expect(reason(bytes + [0]) == .ipv4TotalLengthMismatch(totalLength: 32, length: 33))
        var shorter = bytes
        shorter[3] = 31
        #expect(reason(shorter) == .ipv4TotalLengthMismatch(totalLength: 31, length: 32))
    }

    @Test func ipv4FragmentsAreRejected() throws {
        var moreFragments = try udpV4()
        moreFragments[6] = 0x20
        #expect(reason(moreFragments) == .fragmented)
        var laterFragment = try udpV4()
        laterFragment[7] = 0x01
        #expect(reason(laterFragment) == .fragmented)
        var dontFragment = try udpV4()
        dontFragment[6] = 0x40
        #expect(reason(dontFragment) == nil, "DF is not a fragment")
    }

    @Test func ipv6PayloadLengthMustEqualPacketLength() throws {
        let bytes = try udpV6()
        #expect(reason(Array(bytes.prefix(39))) == .truncatedIPv6Header(length: 39))
        #expect(reason(bytes + [0]) == .ipv6PayloadLengthMismatch(payloadLength: 12, length: 53))
        var zero = bytes
        zero[5] = 0
        #expect(reason(zero) == .ipv6PayloadLengthMismatch(payloadLength: 0, length: 52), "no jumbograms")
    }

    @Test func ipv6ExtensionHeadersAreWalked() throws {
        let udp: [UInt8] = [0, 53, 0, 53, 0, 8, 0, 0]
        // Hop-by-hop (8 bytes) then destination options (16 bytes) then UDP.
        let hopByHop: [UInt8] = [60, 0, 5, 2, 0, 0, 1, 0]
        let destinationOptions: [UInt8] = [17, 1] + [UInt8](repeating: 0, count: 14)
        let packet = try IpPacket(copying: ipv6(firstNextHeader: 0, extensions: hopByHop + destinationOptions, transport: udp))
        #expect(packet.isUdp)
        #expect(packet.transportOffset == 64)
        #expect(packet.ipv6Header?.extensionHeadersRange == 40..<64)
        #expect(packet.udp?.destinationPort == 53)

        for header: UInt8 in [43, 135, 139, 140, 253, 254] {
            let walked = try IpPacket(copying: ipv6(firstNextHeader: header, extensions: [17, 0, 0, 0, 0, 0, 0, 0], transport: udp))
            #expect(walked.isUdp, "extension header \(header) is walked")
        }
    }

    @Test func truncatedExtensionHeaderIsAnError() {
        // Claims 16 bytes, has 8.
        #expect(reason(ipv6(firstNextHeader: 0, extensions: [17, 1, 0, 0, 0, 0, 0, 0], transport: []))
            == .truncatedExtensionHeader(header: 0, offset: 40, length: 48))
        #expect(reason(ipv6(firstNextHeader: 0, extensions: [17], transport: []))
            == .truncatedExtensionHeader(header: 0, offset: 40, length: 41))
        #expect(reason(ipv6(firstNextHeader: 44, extensions: [17, 0, 0, 0], transport: []))
            == .truncatedExtensionHeader(header: 44, offset: 40, length: 44))
    }

    @Test func ipv6FragmentHeaderRejectsAllButAtomicFragments() throws {
        let udp: [UInt8] = [0, 53, 0, 53, 0, 8, 0, 0]
        let atomic: [UInt8] = [17, 0, 0, 0, 0, 0, 0, 1]
        #expect(try IpPacket(copying: ipv6(firstNextHeader: 44, extensions: atomic, transport: udp)).isUdp)
        let more: [UInt8] = [17, 0, 0, 1, 0, 0, 0, 1]
        #expect(reason(ipv6(firstNextHeader: 44, extensions: more, transport: udp)) == .fragmented)
        let offset: [UInt8] = [17, 0, 0, 8, 0, 0, 0, 1]
        #expect(reason(ipv6(firstNextHeader: 44, extensions: offset, transport: udp)) == .fragmented)
    }

    @Test func ahAndEspAreTheTransportNotWalked() throws {
        let ah = try IpPacket(copying: ipv6(firstNextHeader: 51, extensions: [], transport: [17, 1, 0, 0] + [UInt8](repeating: 0, count: 12)))
        #expect(ah.transport == .other(51))
        #expect(ah.transportOffset == 40)
        let esp = try IpPacket(copying: ipv6(firstNextHeader: 50, extensions: [], transport: [1, 2, 3]))
        #expect(esp.transport == .other(50))
    }

    @Test func udpHeaderAndLengthAreValidated() throws {
        let bytes = try udpV4()
        var truncated = Array(bytes.prefix(27))
        truncated[3] = 27
        #expect(reason(truncated) == .truncatedUdpHeader(available: 7))
        var wrongLength = bytes
        wrongLength[25] = 11
        #expect(reason(wrongLength) == .udpLengthMismatch(udpLength: 11, ipPayloadLength: 12))
    }

    @Test func tcpHeaderIsValidated() throws {
        let tcp = try IpPacket.tcp(source: v4a, destination: v4b, sourcePort: 1, destinationPort: 2, flags: .syn, payload: [UInt8]()).bytes
        var truncated = Array(tcp.prefix(39))
        truncated[3] = 39
        #expect(reason(truncated) == .truncatedTcpHeader(available: 19))
        var smallOffset = tcp
        smallOffset[32] = 0x40
        #expect(reason(smallOffset) == .tcpDataOffsetTooSmall(dataOffset: 4))
        var longOffset = tcp
        longOffset[32] = 0x60
        #expect(reason(longOffset) == .truncatedTcpOptions(headerLength: 24, available: 20))
    }

    @Test func icmpMustMatchItsFamilyAndHaveEightBytes() throws {
        var icmpInV6 = try udpV6()
        icmpInV6[6] = 1
        #expect(reason(icmpInV6) == .icmpv4InIPv6)
        var icmpv6InV4 = try udpV4()
        icmpv6InV4[9] = 58
        #expect(reason(icmpv6InV4) == .icmpv6InIPv4)
        var shortIcmp = Array(try udpV4().prefix(27))
        shortIcmp[3] = 27
        shortIcmp[9] = 1
        #expect(reason(shortIcmp) == .truncatedIcmpHeader(available: 7))
    }

    @Test func otherProtocolsAreCarriedOpaquely() throws {
        var gre = try udpV4()
        gre[9] = 47
        let packet = try IpPacket(copying: gre)
        #expect(packet.transport == .other(47))
        #expect(packet.layer4PayloadCount == 12)
        #expect(throws: IpPacketError(.unsupportedIpPayload(47), context: packet.errorContextForTest)) { try packet.sourceKey }
    }

    @Test func errorsCarryContextAndPrintOneSentence() throws {
        var wrongLength = try udpV4()
        wrongLength[25] = 11
        let error = try #require(throws: IpPacketError.self) { try IpPacket(copying: wrongLength) }
        #expect(error.context.version == .v4)
        #expect(error.context.source == v4a)
        #expect(error.context.destination == v4b)
        #expect(error.context.nextHeader == 17)
        #expect(error.description == "IPv4 packet 10.0.0.1 -> 10.0.0.2 (UDP 53 -> 5353, length 11, checksum 0x"
            + String(wrongLength[26], radix: 16).leftPad(2) + String(wrongLength[27], radix: 16).leftPad(2)
            + "): UDP length (11) does not match length of IP payload (12)")
        #expect(IpPacketError(.empty).description == "Empty packet")
        #expect(!error.description.contains("\n"))
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
