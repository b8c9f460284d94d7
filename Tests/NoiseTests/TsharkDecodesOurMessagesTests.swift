import Foundation
import IpPacket
import Noise
import PcapFile
import SansIO
import TestSupport
import Testing

/// Every WireGuard message type we produce, wrapped in UDP with IpPacket's builder and written to a pcap, is
/// decoded by tshark's WireGuard dissector without errors (the interop run covers 1, 2 and 4 on the wire;
/// this adds the cookie reply, which needs load).
@Suite(.offPool) struct TsharkDecodesOurMessagesTests {
    @Test func allFourMessageTypesDecode() throws {
        let pair = TunnelPair(handshakesPerSecond: 0)  // every handshake is "under load": cookies required
        let (_, initiation) = pair.send([0x45, 0, 0, 5, 9], from: pair.alice)
        let (cookieResult, cookieReply) = pair.receive(initiation, on: pair.bob)
        #expect(cookieResult == .writeToNetwork(count: 64))
        #expect(pair.receive(cookieReply, on: pair.alice).0 == .done)

        let relaxed = TunnelPair()
        let (_, secondInitiation) = relaxed.send([0x45, 0, 0, 5, 9], from: relaxed.alice)
        let (_, response) = relaxed.receive(secondInitiation, on: relaxed.bob)
        let (_, keepalive) = relaxed.receive(response, on: relaxed.alice)
        let data = try #require(relaxed.drain(relaxed.alice).first)
        let messages = [initiation, cookieReply, secondInitiation, response, keepalive, data]

        let path = NSTemporaryDirectory() + "wg-messages-\(UUID().uuidString).pcap"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .raw)
        for (index, message) in messages.enumerated() {
            let packet = try IpPacket.udp(source: IpAddress("10.0.0.1")!, destination: IpAddress("10.0.0.2")!,
                                          sourcePort: 51820, destinationPort: 51821, payload: message)
            try writer.write(packet.bytes, timestampNanoseconds: Int64(index) * 1000)
        }
        writer.close()

        let output = try Tshark.run(["-r", path, "-d", "udp.port==51821,wg", "-T", "fields", "-e", "wg.type", "-e", "_ws.malformed",
                                     "-e", "wg.receiver", "-e", "wg.counter"])
        let rows = output.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        #expect(rows.map { $0.first.map(String.init) } == ["1", "3", "1", "2", "4", "4"], "tshark: \(output)")
        #expect(rows.allSatisfy { $0.count < 2 || $0[1].isEmpty }, "no malformed message: \(output)")
        #expect(rows.last.map { $0.count > 3 ? String($0[3]) : "" } == "1", "the data message has counter 1")
    }

    @Test func encapsulationInPlaceEqualsOutOfPlace() {
        let payload = [UInt8](repeating: 0x45, count: 1280)
        var results: [[UInt8]] = []
        for inPlace in [false, true] {
            let pair = TunnelPair(seed: 9)
            let (_, initiation) = pair.send([0x45], from: pair.alice)
            pair.exchange([initiation], from: pair.alice)
            var buffer = [UInt8](repeating: 0, count: 1400)
            let result: TunnelOutput
            if inPlace {
                buffer.replaceSubrange(16..<(16 + 1280), with: payload)
                result = buffer.withUnsafeMutableBytes { buffer in
                    pair.alice.encapsulate(UnsafeRawBufferPointer(rebasing: buffer[16..<(16 + 1280)]), into: buffer, now: pair.now)
                }
            } else {
                result = payload.withUnsafeBytes { packet in
                    buffer.withUnsafeMutableBytes { pair.alice.encapsulate(packet, into: $0, now: pair.now) }
                }
            }
            #expect(result == .writeToNetwork(count: 1312))
            // Each run has its own tunnels, so compare what the receiver decrypts, not ciphertexts.
            let (received, plaintext) = pair.receive(Array(buffer.prefix(1312)), on: pair.bob)
            #expect(received == .writeToTunnel(offset: 16, count: 1280))
            results.append(plaintext)
        }
        #expect(results[0] == payload && results[1] == payload)
    }
}
