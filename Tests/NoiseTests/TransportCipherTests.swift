import CSodium
@testable import Noise
import Testing

/// The data path's ChaCha20-Poly1305 (OpenSSL's EVP) against libsodium's, called directly with WireGuard's
/// nonce written out by hand: what one seals the other opens, for every length a tunnel carries.
@Suite struct TransportCipherTests {
    @Test func openSSLCarriesTheDataPathOnThisMachine() {
        let cipher = TransportCipher(key: Self.key(seed: 1), sealing: true)
        let usesOpenSSL = cipher.usesOpenSSL
        #expect(usesOpenSSL, "libsodium fallback in use: OpenSSL refused ChaCha20-Poly1305")
    }

    @Test(arguments: [0, 1, 15, 16, 17, 63, 64, 65, 1279, 1280, 1420, 65_535])
    func sealsWhatLibsodiumOpensAndOpensWhatLibsodiumSeals(length: Int) {
        let key = Self.key(seed: UInt8(truncatingIfNeeded: length))
        let sealer = TransportCipher(key: key, sealing: true)
        let opener = TransportCipher(key: key, sealing: false)
        let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for counter: UInt64 in [0, 1, 0x1_0000_0001, UInt64.max - 8192] {
            var ours = [UInt8](repeating: 0, count: length + 16)
            let sealed = plaintext.withUnsafeBytes { input in
                ours.withUnsafeMutableBytes { sealer.seal(counter: counter, plaintext: input, into: $0) }
            }
            #expect(sealed)
            #expect(ours == Self.libsodiumSeal(plaintext, key: key, counter: counter), "counter \(counter)")

            var opened = [UInt8](repeating: 0, count: length)
            let theirs = Self.libsodiumSeal(plaintext, key: key, counter: counter)
            let ok = theirs.withUnsafeBytes { input in
                opened.withUnsafeMutableBytes { opener.open(counter: counter, ciphertext: input, into: $0) }
            }
            #expect(ok && opened == plaintext, "counter \(counter)")
        }
    }

    @Test func sealsAndOpensInPlace() {
        let key = Self.key(seed: 9)
        let sealer = TransportCipher(key: key, sealing: true)
        let opener = TransportCipher(key: key, sealing: false)
        let plaintext = [UInt8](repeating: 0x45, count: 1280)
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        let sealed = buffer.withUnsafeMutableBytes { buffer in
            sealer.seal(counter: 7, plaintext: UnsafeRawBufferPointer(rebasing: buffer[..<1280]), into: buffer)
        }
        #expect(sealed && buffer == Self.libsodiumSeal(plaintext, key: key, counter: 7))
        let opened = buffer.withUnsafeMutableBytes { buffer in
            opener.open(counter: 7, ciphertext: UnsafeRawBufferPointer(buffer), into: buffer)
        }
        #expect(opened && Array(buffer[..<1280]) == plaintext)
    }

    @Test func refusesATamperedTagCiphertextOrCounterAndAShortMessage() {
        let key = Self.key(seed: 3)
        let opener = TransportCipher(key: key, sealing: false)
        let good = Self.libsodiumSeal([UInt8](repeating: 1, count: 100), key: key, counter: 5)
        var output = [UInt8](repeating: 0, count: 100)
        func opens(_ message: [UInt8], counter: UInt64 = 5) -> Bool {
            message.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { opener.open(counter: counter, ciphertext: input, into: $0) }
            }
        }
        #expect(opens(good))
        var tag = good
        tag[110] ^= 1
        #expect(!opens(tag), "tag")
        var body = good
        body[3] ^= 0x80
        #expect(!opens(body), "ciphertext")
        #expect(!opens(good, counter: 6), "counter")
        #expect(!opens(Array(good[..<15])), "shorter than a tag")
        #expect(opens(good), "a refusal leaves the context usable")
    }

    @Test func aSealerDoesNotOpenNorAnOpenerSeal() {
        let key = Self.key(seed: 4)
        let sealer = TransportCipher(key: key, sealing: true)
        let opener = TransportCipher(key: key, sealing: false)
        var output = [UInt8](repeating: 0, count: 64)
        let message = Self.libsodiumSeal([1, 2, 3], key: key, counter: 0)
        #expect(!message.withUnsafeBytes { input in output.withUnsafeMutableBytes { sealer.open(counter: 0, ciphertext: input, into: $0) } })
        #expect(![UInt8](repeating: 0, count: 3).withUnsafeBytes { input in
            output.withUnsafeMutableBytes { opener.seal(counter: 0, plaintext: input, into: $0) }
        })
    }

    static func key(seed: UInt8) -> SecretKey {
        SecretKey(bytes: (0..<32).map { UInt8(truncatingIfNeeded: Int($0) * 7) ^ seed })!
    }

    /// libsodium's IETF ChaCha20-Poly1305 with the nonce built here: four zero bytes, the counter little-endian.
    static func libsodiumSeal(_ plaintext: [UInt8], key: SecretKey, counter: UInt64) -> [UInt8] {
        let nonce = [0, 0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (8 * UInt64($0))) }
        var output = [UInt8](repeating: 0, count: plaintext.count + 16)
        var written: UInt64 = 0
        let keyBytes = Array(key.bytes)
        let result = crypto_aead_chacha20poly1305_ietf_encrypt(
            &output, &written, plaintext, UInt64(plaintext.count), nil, 0, nil, nonce, keyBytes)
        precondition(result == 0 && Int(written) == output.count)
        return output
    }
}
