import Foundation
import IpPacket
import PcapFile
import SansIO
import Stun
import TestSupport
import Testing

/// Every message class and method with every attribute, as our encoder writes it, is dissected by tshark's
/// STUN dissector without malformed packets or expert warnings, and tshark reads the values we wrote.
@Suite(.offPool) struct TsharkDecodesStunTests {
    @Test func tsharkAcceptsEverythingWeEncode() throws {
        var messages: [[UInt8]] = []
        let turnAttributes: [StunAttribute] = [
            .requestedTransport(17), .additionalAddressFamily(2), .software("snownet"), .username("1700000000:salt"),
            .realm("firezone"), .nonce("a-nonce"), .lifetime(seconds: 600),
        ]
        let key = StunKey.longTerm(username: "1700000000:salt", realm: "firezone", password: "secret")
        messages.append(StunMessage(class: .request, method: .allocate, transactionId: .random(), attributes: turnAttributes)
            .encode(integrity: .sha1(key: key)))
        messages.append(StunMessage(class: .successResponse, method: .allocate, transactionId: .random(), attributes: [
            .xorRelayedAddress(SocketAddress("192.0.2.15:49152")!), .xorRelayedAddress(SocketAddress("[2001:db8::15]:49152")!),
            .xorMappedAddress(SocketAddress("198.51.100.2:40000")!), .lifetime(seconds: 600), .software("firezone-relay"),
        ]).encode(integrity: .sha1(key: key)))
        messages.append(StunMessage(class: .errorResponse, method: .allocate, transactionId: .random(), attributes: [
            .errorCode(code: 401, reason: "Unauthorized"), .realm("firezone"), .nonce("n"),
        ]).encode(integrity: .sha1(key: key)))
        messages.append(StunMessage(class: .request, method: .channelBind, transactionId: .random(), attributes: [
            .channelNumber(0x4000), .xorPeerAddress(SocketAddress("203.0.113.7:51820")!), .username("u"), .realm("firezone"),
            .nonce("n"),
        ]).encode(integrity: .sha1(key: key)))
        messages.append(StunMessage(class: .request, method: .refresh, transactionId: .random(), attributes: [
            .lifetime(seconds: 0), .requestedAddressFamily(1),
        ]).encode(integrity: .sha1(key: key)))
        messages.append(StunMessage(class: .request, method: .binding, transactionId: .random(), attributes: [
            .username("remote:local"), .iceControlling(tieBreaker: 0x1234_5678_9ABC_DEF0), .priority(0x6E00_01FF), .useCandidate,
        ]).encode(integrity: .sha1(key: StunKey.shortTerm(password: "pass")), fingerprint: true))
        messages.append(StunMessage(class: .successResponse, method: .binding, transactionId: .random(), attributes: [
            .xorMappedAddress(SocketAddress("[2001:db8::9]:50000")!), .mappedAddress(SocketAddress("192.0.2.9:50000")!),
            .alternateServer(SocketAddress("192.0.2.10:3478")!),
        ]).encode(integrity: .sha256(key: [1, 2, 3]), fingerprint: true))
        messages.append(StunMessage(class: .errorResponse, method: .binding, transactionId: .random(), attributes: [
            .errorCode(code: 420, reason: "Unknown Attribute"), .unknownAttributes([0x0077]),
        ]).encode(fingerprint: true))
        messages.append(StunMessage(class: .indication, method: .data, transactionId: .random(), attributes: [
            .xorPeerAddress(SocketAddress("203.0.113.7:51820")!), .data([1, 2, 3, 4, 5]),
        ]).encode())

        let path = NSTemporaryDirectory() + "stun-\(UUID().uuidString).pcap"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .raw)
        for (index, message) in messages.enumerated() {
            let packet = try IpPacket.udp(source: IpAddress("10.0.0.1")!, destination: IpAddress("10.0.0.2")!,
                                          sourcePort: 40000, destinationPort: 3478, payload: message)
            try writer.write(packet.bytes, timestampNanoseconds: Int64(index) * 1000)
        }
        writer.close()

        let output = try Tshark.run(["-r", path, "-T", "fields", "-E", "separator=/t", "-e", "stun.type", "-e", "_ws.malformed",
                                     "-e", "_ws.expert.severity", "-e", "_ws.expert.message", "-e", "stun.att.ipv4",
                                     "-e", "stun.att.port", "-e", "stun.att.channelnum"])
        let rows = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.count == messages.count)
        let expectedTypes = ["0x0003", "0x0103", "0x0113", "0x0009", "0x0004", "0x0001", "0x0101", "0x0111", "0x0017"]
        #expect(rows.map { $0.first ?? "" } == expectedTypes, "tshark: \(output)")
        for (index, row) in rows.enumerated() {
            #expect(row.count > 1 && row[1].isEmpty, "message \(index) malformed: \(row)")
            let severities = row.count > 2 ? row[2].split(separator: ",").compactMap { Int($0) } : []
            #expect(severities.allSatisfy { $0 < 0x600000 }, "message \(index): \(row)")
        }
        #expect(rows[1][4].contains("192.0.2.15"), "XOR-RELAYED-ADDRESS as tshark reads it")
        #expect(rows[3][6] == "0x4000", "CHANNEL-NUMBER")
    }
}
