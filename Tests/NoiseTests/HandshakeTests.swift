import Noise
import SansIO
import Testing

@Suite struct HandshakeTests {
    @Test func firstPacketTriggersHandshakeAndIsDeliveredAfterIt() throws {
        let pair = TunnelPair(presharedKey: SecretKey(bytes: [UInt8](repeating: 7, count: 32)))
        let payload = Array("hello from alice".utf8)
        let (result, initiation) = pair.send(payload, from: pair.alice)
        #expect(result == .writeToNetwork(count: 148))
        #expect(WireGuardMessage.peek(initiation.withUnsafeBytes { $0 }) != nil)
        #expect(pair.alice.queuedPacketCount == 1)
        let delivered = pair.exchange([initiation], from: pair.alice)
        #expect(delivered.bob == [payload])
        #expect(pair.alice.currentSessionIndex != nil)
        #expect(pair.bob.currentSessionIndex != nil, "alice's keepalive confirmed bob's session")

        let (reply, datagram) = pair.send(Array("hi alice".utf8), from: pair.bob)
        #expect(reply == .writeToNetwork(count: 8 + 32))
        let (received, plaintext) = pair.receive(datagram, on: pair.alice)
        #expect(received == .writeToTunnel(offset: 16, count: 8))
        #expect(plaintext == Array("hi alice".utf8))
    }

    @Test func mismatchedPresharedKeysFailTheHandshake() throws {
        let pair = TunnelPair(presharedKey: SecretKey(bytes: [UInt8](repeating: 1, count: 32)),
                              bobPresharedKey: SecretKey(bytes: [UInt8](repeating: 2, count: 32)))
        let (_, initiation) = pair.send([1, 2, 3], from: pair.alice)
        let (response, responseBytes) = pair.receive(initiation, on: pair.bob)
        #expect(response == .writeToNetwork(count: 92), "the initiation itself does not depend on the PSK")
        let (result, _) = pair.receive(responseBytes, on: pair.alice)
        guard case .error(.decryptionFailed) = result else {
            Issue.record("expected a decryption failure, got \(result)")
            return
        }
        #expect(pair.alice.currentSessionIndex == nil)
    }
}
