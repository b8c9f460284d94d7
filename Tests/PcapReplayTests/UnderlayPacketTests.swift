import Replay
import SansIO
import Testing

/// The underlay parser and the fragment reassembler on what real captures rarely show but networks do:
/// fragments out of order and twice, fragments that disagree, a datagram whose rest never comes, IPv6
/// extension headers before the UDP header. Captures of kernel-made fragments are in UnderlayVariantsTests.
@Suite struct UnderlayPacketTests {
    private static let udpPayload = [UInt8](0..<200)
    /// A UDP datagram from 10.0.0.1:1000 to 10.0.0.2:51820, its checksum left 0 as IPv4 allows.
    private static let udp: [UInt8] = [0x03, 0xE8, 0xCA, 0x6C, 0, UInt8(8 + udpPayload.count), 0, 0] + udpPayload

    private func ipv4(identification: UInt16 = 7, offset: Int, more: Bool, _ payload: ArraySlice<UInt8>) -> [UInt8] {
        let total = 20 + payload.count
        let flags = UInt16(offset / 8) | (more ? 0x2000 : 0)
        return [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), UInt8(identification >> 8), UInt8(identification & 0xFF),
                UInt8(flags >> 8), UInt8(flags & 0xFF), 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2] + payload
    }

    private func parse(_ bytes: [UInt8]) throws -> UnderlayPacket { try bytes.withUnsafeBytes { try UnderlayPacket.parse($0) } }

    private func add(_ bytes: [UInt8], to reassembler: inout FragmentReassembler, at time: Int64 = 0) throws -> [UInt8]? {
        try bytes.withUnsafeBytes { raw in
            guard case .fragment(let fragment) = try UnderlayPacket.parse(raw) else { Issue.record("not a fragment"); return nil }
            return try reassembler.add(fragment, at: time)
        }
    }

    @Test func aWholeDatagramWithPaddingAfterIt() throws {
        guard case .udp(let source, let destination, let payload) = try parse(ipv4(offset: 0, more: false, Self.udp[...]) + [0, 0, 0]) else {
            Issue.record("not UDP")
            return
        }
        #expect(source == SocketAddress(ip: .v4(IPv4Address(10, 0, 0, 1)), port: 1000))
        #expect(destination.port == 51820)
        #expect(Array(payload) == Self.udpPayload)
    }

    @Test func fragmentsInAnyOrderAndTwiceMakeTheDatagramOnce() throws {
        let pieces = [ipv4(offset: 0, more: true, Self.udp[0..<64]), ipv4(offset: 64, more: true, Self.udp[64..<128]),
                      ipv4(offset: 128, more: false, Self.udp[128...])]
        var reassembler = FragmentReassembler()
        #expect(try add(pieces[2], to: &reassembler) == nil)
        #expect(try add(pieces[0], to: &reassembler) == nil)
        #expect(try add(pieces[0], to: &reassembler) == nil)
        #expect(try add(pieces[1], to: &reassembler) == Self.udp)
        #expect(reassembler.pendingCount == 0)
    }

    @Test func fragmentsThatDisagreeDropTheDatagramWithAReason() throws {
        var reassembler = FragmentReassembler()
        #expect(try add(ipv4(offset: 0, more: true, Self.udp[0..<64]), to: &reassembler) == nil)
        var changed = Self.udp
        changed[60] ^= 0xFF
        let error = try #require(throws: UnderlayPacketError.self) { try add(ipv4(offset: 56, more: false, changed[56...]), to: &reassembler) }
        #expect(error.message.contains("disagree"))
        #expect(reassembler.pendingCount == 0)
        #expect(throws: UnderlayPacketError.self) { try add(ipv4(offset: 0, more: true, Self.udp[0..<60]), to: &reassembler) }
    }

    @Test func incompleteDatagramsAreGivenUpAfterThirtySecondsOrForNewerOnes() throws {
        var reassembler = FragmentReassembler()
        #expect(try add(ipv4(identification: 1, offset: 0, more: true, Self.udp[0..<64]), to: &reassembler, at: 0) == nil)
        #expect(try add(ipv4(identification: 2, offset: 0, more: true, Self.udp[0..<64]), to: &reassembler, at: 31_000_000_000) == nil)
        #expect(reassembler.abandoned == 1 && reassembler.pendingCount == 1)
        for identification in 3..<(3 + UInt16(FragmentReassembler.maximumPending)) {
            #expect(try add(ipv4(identification: identification, offset: 0, more: true, Self.udp[0..<64]), to: &reassembler, at: 31_000_000_000) == nil)
        }
        #expect(reassembler.pendingCount == FragmentReassembler.maximumPending)
        #expect(reassembler.abandoned == 2)
        #expect(reassembler.abandonAll() == FragmentReassembler.maximumPending)
    }

    @Test func ipv6ExtensionHeadersAndAnAtomicFragmentLeadToTheUdpHeader() throws {
        let source: [UInt8] = [0xFD, 0] + [UInt8](repeating: 0, count: 13) + [1]
        let destination: [UInt8] = [0xFD, 0] + [UInt8](repeating: 0, count: 13) + [2]
        let hopByHop: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]         // next: destination options; PadN
        let destinationOptions: [UInt8] = [44, 0, 1, 4, 0, 0, 0, 0] // next: fragment
        let atomicFragment: [UInt8] = [17, 0, 0, 0, 0, 0, 0, 9]    // offset 0, no more fragments
        let payload = hopByHop + destinationOptions + atomicFragment + Self.udp
        let packet: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), 0, 64] + source + destination + payload
        guard case .udp(_, let to, let udp) = try parse(packet) else {
            Issue.record("not UDP")
            return
        }
        #expect(to == SocketAddress(ip: .v6(IPv6Address("fd00::2")!), port: 51820))
        #expect(Array(udp) == Self.udpPayload)
        #expect(throws: UnderlayPacketError.self) { try parse(Array(packet.dropLast(Self.udp.count + 4))) }
    }

    @Test func lengthsBeyondTheFrameAreErrorsNotReads() throws {
        var packet = ipv4(offset: 0, more: false, Self.udp[...])
        packet[3] &+= 1
        #expect(throws: UnderlayPacketError.self) { try parse(packet) }
        var udpTooLong = ipv4(offset: 0, more: false, Self.udp[...])
        udpTooLong[25] &+= 1
        #expect(throws: UnderlayPacketError.self) { try parse(udpTooLong) }
    }
}
