import Foundation
import IpPacket
import Noise
import PcapFile
import SansIO
import TestSupport
import Testing

/// The key log our tunnels write, in Wireshark's format: tshark decrypts a captured conversation with either
/// side's secrets, and so does `WireGuardDecryptor`, to the same inner packets.
@Suite(.offPool) struct KeyLogTests {
    private struct Conversation {
        var datagrams: [[UInt8]] = []
        var fromAlice: [Bool] = []
        var innerPackets: [[UInt8]] = []
        var aliceSecrets: [WireGuardSessionSecrets] = []
        var bobSecrets: [WireGuardSessionSecrets] = []
    }

    /// A handshake and pings both ways between two of our tunnels with Firezone's per-connection PSK.
    private func converse() throws -> Conversation {
        var conversation = Conversation()
        let pair = TunnelPair(presharedKey: SecretKey.generatePrivateKey())
        var alice: [WireGuardSessionSecrets] = [], bob: [WireGuardSessionSecrets] = []
        pair.alice.keyLog = { alice.append($0) }
        pair.bob.keyLog = { bob.append($0) }
        let ping = try IpPacket.udp(source: IpAddress("100.64.0.1")!, destination: IpAddress("100.64.0.2")!,
                                    sourcePort: 5000, destinationPort: 53, payload: Array("first".utf8)).bytes
        let (_, initiation) = pair.send(ping, from: pair.alice)
        let (_, response) = pair.receive(initiation, on: pair.bob)
        let (_, confirmation) = pair.receive(response, on: pair.alice)
        conversation.datagrams = [initiation, response, confirmation]
        let queued = pair.drain(pair.alice)
        for datagram in [confirmation] + queued { _ = pair.receive(datagram, on: pair.bob) }
        conversation.datagrams += queued
        conversation.fromAlice = [true, false, true] + queued.map { _ in true }
        conversation.innerPackets.append(ping)
        for (index, sender) in [pair.alice, pair.bob, pair.alice].enumerated() {
            let packet = try IpPacket.udp(source: IpAddress(sender === pair.alice ? "100.64.0.1" : "100.64.0.2")!,
                                          destination: IpAddress(sender === pair.alice ? "100.64.0.2" : "100.64.0.1")!,
                                          sourcePort: 6000 + UInt16(index), destinationPort: 7000,
                                          payload: Array("packet \(index)".utf8)).bytes
            let (_, datagram) = pair.send(packet, from: sender)
            #expect(pair.receive(datagram, on: sender === pair.alice ? pair.bob : pair.alice).1 == packet)
            conversation.datagrams.append(datagram)
            conversation.fromAlice.append(sender === pair.alice)
            conversation.innerPackets.append(packet)
        }
        conversation.aliceSecrets = alice
        conversation.bobSecrets = bob
        return conversation
    }

    @Test func eitherSidesKeyLogDecryptsTheConversationForTsharkAndForUs() throws {
        let conversation = try converse()
        #expect(conversation.aliceSecrets.count == 1 && conversation.bobSecrets.count == 1, "one handshake, one entry each")
        let directory = NSTemporaryDirectory() + "wg-keylog-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let capture = directory + "/capture.pcap"
        let writer = try PcapWriter(path: capture, linkType: .raw)
        for (index, datagram) in conversation.datagrams.enumerated() {
            let fromAlice = conversation.fromAlice[index]
            let packet = try IpPacket.udp(source: IpAddress(fromAlice ? "10.0.0.1" : "10.0.0.2")!,
                                          destination: IpAddress(fromAlice ? "10.0.0.2" : "10.0.0.1")!,
                                          sourcePort: 51820, destinationPort: 51820, payload: datagram)
            try writer.write(packet.bytes, timestampNanoseconds: 1_700_000_000_000_000_000 + Int64(index) * 1_000_000)
        }
        writer.close()

        for (side, secrets) in [("alice", conversation.aliceSecrets), ("bob", conversation.bobSecrets)] {
            let keyLog = directory + "/\(side).keys"
            try secrets.map(\.keyLogLines).joined().write(toFile: keyLog, atomically: true, encoding: .utf8)

            let rows = try Tshark.fields(["frame.number", "wg.handshake_ok", "udp.payload", "ip.src"], of: capture,
                                         options: ["-o", "wg.keylog_file:\(keyLog)", "-o", "wg.dissect_packet:TRUE"])
            #expect(rows.count == conversation.datagrams.count)
            #expect(rows.dropFirst().first?["wg.handshake_ok"] == "1", "\(side): tshark accepts the handshake: \(rows)")
            // The decrypted inner packets: tshark's second ip.src on every data frame carrying a packet.
            let theirInner = rows.compactMap { row in row["ip.src"]?.split(separator: ",").dropFirst().first.map(String.init) }
            let ourDecryptor = try decrypt(conversation.datagrams, with: WireGuardKeyLog.parse(String(contentsOfFile: keyLog, encoding: .utf8)))
            #expect(ourDecryptor == conversation.innerPackets, "\(side): our decryptor gives back every inner packet")
            #expect(theirInner == ourDecryptor.map { packet in
                (try? IpPacket(copying: packet)).map { "\($0.source)" } ?? "?"
            }, "\(side): tshark decrypts the same packets")
        }
    }

    @Test func secretsOfAnotherHandshakeOpenNothing() throws {
        let conversation = try converse()
        let other = try converse()
        #expect(try decrypt(conversation.datagrams, with: other.aliceSecrets + other.bobSecrets).isEmpty)
    }

    @Test func keyLogsWithDamageAreErrorsNamingTheLine() throws {
        let conversation = try converse()
        let lines = conversation.aliceSecrets[0].keyLogLines.split(separator: "\n").map(String.init)
        #expect(try WireGuardKeyLog.parse(lines.joined(separator: "\n") + "\n# comment\nOTHER = x\n").count == 1)
        let badValue = [lines[0], lines[1], "LOCAL_EPHEMERAL_PRIVATE_KEY = AAAA"].joined(separator: "\n")
        #expect(throws: WireGuardKeyLog.ParseError(line: 3, message: "LOCAL_EPHEMERAL_PRIVATE_KEY is not a 32-byte key in base64")) {
            try WireGuardKeyLog.parse(badValue)
        }
        #expect(throws: WireGuardKeyLog.ParseError.self) { try WireGuardKeyLog.parse(lines[2]) }
    }

    /// The inner packets our decryptor opens from `datagrams` (keepalives left out).
    private func decrypt(_ datagrams: [[UInt8]], with secrets: [WireGuardSessionSecrets]) throws -> [[UInt8]] {
        var decryptor = WireGuardDecryptor(secrets: secrets)
        var inner: [[UInt8]] = []
        for datagram in datagrams {
            datagram.withUnsafeBytes { bytes in
                switch WireGuardMessage.peek(bytes) {
                case .initiation?: decryptor.addInitiation(bytes)
                case .response?: decryptor.addResponse(bytes)
                case .data?:
                    if case .plaintext(let plaintext, _) = decryptor.open(bytes), !plaintext.isEmpty { inner.append(plaintext) }
                default: break
                }
            }
        }
        return inner
    }
}
