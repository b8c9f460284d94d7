import CBlake2
import Testing

@Suite struct Blake2Tests {
    /// RFC 7693 Appendix B: BLAKE2s-256("abc").
    @Test func blake2sMatchesRfc7693() {
        let message = Array("abc".utf8)
        var digest = [UInt8](repeating: 0, count: 32)
        // libb2 takes the output length before the input length.
        #expect(blake2s(&digest, message, nil, 32, message.count, 0) == 0)
        #expect(digest == hex("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"))
    }

    /// BLAKE2 reference KAT: keyed BLAKE2s-256 of the empty message with key 00..1f.
    @Test func keyedBlake2sMatchesReferenceVector() {
        let key = (0..<32).map(UInt8.init)
        var digest = [UInt8](repeating: 0, count: 32)
        #expect(blake2s(&digest, nil, key, 32, 0, key.count) == 0)
        #expect(digest == hex("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49"))
    }

    /// WireGuard's initial chaining key and hash (the Noise construction and identifier strings).
    @Test func wireGuardInitialChainingKeyAndHash() {
        let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8)
        var chainingKey = [UInt8](repeating: 0, count: 32)
        #expect(blake2s(&chainingKey, construction, nil, 32, construction.count, 0) == 0)
        #expect(chainingKey == hex("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36"))
        let input = chainingKey + Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8)
        var hash = [UInt8](repeating: 0, count: 32)
        #expect(blake2s(&hash, input, nil, 32, input.count, 0) == 0)
        #expect(hash == hex("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3"))
    }
}
