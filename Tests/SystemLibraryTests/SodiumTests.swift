import CSodium
import Testing

@Suite struct SodiumTests {
    init() {
        #expect(sodium_init() >= 0)
    }

    /// RFC 7748 §6.1: Alice's and Bob's public keys and their shared secret.
    @Test func x25519MatchesRfc7748() {
        let alicePrivate = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let bobPrivate = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        var alicePublic = [UInt8](repeating: 0, count: 32)
        var bobPublic = [UInt8](repeating: 0, count: 32)
        #expect(crypto_scalarmult_curve25519_base(&alicePublic, alicePrivate) == 0)
        #expect(crypto_scalarmult_curve25519_base(&bobPublic, bobPrivate) == 0)
        #expect(alicePublic == hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
        #expect(bobPublic == hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
        var sharedA = [UInt8](repeating: 0, count: 32)
        var sharedB = [UInt8](repeating: 0, count: 32)
        #expect(crypto_scalarmult_curve25519(&sharedA, alicePrivate, bobPublic) == 0)
        #expect(crypto_scalarmult_curve25519(&sharedB, bobPrivate, alicePublic) == 0)
        #expect(sharedA == hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"))
        #expect(sharedA == sharedB)
    }

    /// RFC 8439 §2.8.2: the AEAD_CHACHA20_POLY1305 example, then a tampered byte fails to open.
    @Test func chaCha20Poly1305MatchesRfc8439() {
        let plaintext = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = hex("070000004041424344454647")
        var sealed = [UInt8](repeating: 0, count: plaintext.count + 16)
        var sealedLength: UInt64 = 0
        #expect(crypto_aead_chacha20poly1305_ietf_encrypt(
            &sealed, &sealedLength, plaintext, UInt64(plaintext.count), aad, UInt64(aad.count), nil, nonce, key) == 0)
        #expect(Array(sealed.prefix(plaintext.count)) == hex("""
            d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116
            """))
        #expect(Array(sealed.suffix(16)) == hex("1ae10b594f09e26a7e902ecbd0600691"))

        var opened = [UInt8](repeating: 0, count: plaintext.count)
        var openedLength: UInt64 = 0
        #expect(crypto_aead_chacha20poly1305_ietf_decrypt(
            &opened, &openedLength, nil, sealed, sealedLength, aad, UInt64(aad.count), nonce, key) == 0)
        #expect(opened == plaintext)
        sealed[10] ^= 1
        #expect(crypto_aead_chacha20poly1305_ietf_decrypt(
            &opened, &openedLength, nil, sealed, sealedLength, aad, UInt64(aad.count), nonce, key) == -1)
    }

    /// draft-irtf-cfrg-xchacha §A.3.1 (WireGuard's cookie replies use XChaCha20-Poly1305).
    @Test func xChaCha20Poly1305MatchesDraftVector() {
        let plaintext = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
        var sealed = [UInt8](repeating: 0, count: plaintext.count + 16)
        var sealedLength: UInt64 = 0
        #expect(crypto_aead_xchacha20poly1305_ietf_encrypt(
            &sealed, &sealedLength, plaintext, UInt64(plaintext.count), aad, UInt64(aad.count), nil, nonce, key) == 0)
        #expect(Array(sealed.prefix(4)) == hex("bd6d179d"))
        #expect(Array(sealed.suffix(16)) == hex("c0875924c1c7987947deafd8780acf49"))
    }
}
