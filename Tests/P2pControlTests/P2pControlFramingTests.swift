import IpPacket
import P2pControl
import Testing

/// The p2p control packet (spec `tunnel-dns.md` §3.1): an IPv6 packet from `::` to `::`, next header 0xFF.
@Suite struct P2pControlFramingTests {
    /// The p2p control framing of spec §3.1, byte for byte, and its detection rule.
    @Test func p2pControlPacketFraming() throws {
        let body = Array(#"{"resource":"00000000-0000-0000-0000-000000000065","domain":"app.example.com","status":"Active"}"#.utf8)
        let packet = try IpPacket.p2pControl(kind: 1, body: body)
        let bytes = packet.bytes
        #expect(Array(bytes[0..<4]) == [0x60, 0, 0, 0])
        #expect(Int(bytes[4]) << 8 | Int(bytes[5]) == 8 + body.count)
        #expect(bytes[6] == 0xFF)
        #expect(bytes[7] == 0)
        #expect(bytes[8..<40].allSatisfy { $0 == 0 })
        #expect(bytes[40] == 1)
        #expect(bytes[41..<48].allSatisfy { $0 == 0 })
        #expect(Array(bytes[48...]) == body)
        let control = try #require(packet.p2pControl)
        #expect(control.kind == 1)
        #expect(packet.bytes(in: control.bodyRange) == body)

        let goodbye = try IpPacket.p2pControl(kind: 2, body: [UInt8]())
        #expect(goodbye.p2pControl?.kind == 2)
        #expect(goodbye.p2pControl?.bodyRange.isEmpty == true)

        // Same protocol number, but from a real address: not a control packet.
        var spoofed = bytes
        spoofed[23] = 1
        #expect(try IpPacket(copying: spoofed).p2pControl == nil)
        // Fewer than 8 payload bytes: not a control packet either.
        let short: [UInt8] = [0x60, 0, 0, 0, 0, 4, 0xFF, 0] + [UInt8](repeating: 0, count: 32) + [2, 0, 0, 0]
        #expect(try IpPacket(copying: short).p2pControl == nil)
    }
}
