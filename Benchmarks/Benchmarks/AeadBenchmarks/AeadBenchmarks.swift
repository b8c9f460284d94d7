import Benchmark
import COpenSSLCrypto
import CSodiumRaw
import Crypto
import Foundation

/// ChaCha20-Poly1305 seal and open of a 1280-byte packet in one run, in the three implementations this machine
/// has: libsodium (what `Noise` uses), OpenSSL 3's libcrypto through EVP (Debian's libssl-dev; one context per
/// key, reused), and BoringSSL through swift-crypto's `ChaChaPoly` (its API returns a new sealed box, so it
/// allocates per call). The fastest is the floor issue 26 measures the tunnel against.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(3),
        maxIterations: 10_000_000
    )
    let length = 1280
    let key = [UInt8](repeating: 0x42, count: 32)

    Benchmark("libsodium seal, 1280 bytes in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        _ = sodium_init()
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 2048)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0x61, count: 2048)
        var nonce = [UInt8](repeating: 0, count: 12)
        var sealed: UInt64 = 0
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            nonce[4] = UInt8(truncatingIfNeeded: iteration)
            _ = crypto_aead_chacha20poly1305_ietf_encrypt(buffer, &sealed, buffer, UInt64(length), nil, 0, nil, nonce, key)
        }
        blackHole(sealed)
    }

    Benchmark("libsodium open, 1280 bytes in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        _ = sodium_init()
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 2048)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0x61, count: 2048)
        let nonce = [UInt8](repeating: 0, count: 12)
        var sealed: UInt64 = 0
        _ = crypto_aead_chacha20poly1305_ietf_encrypt(buffer, &sealed, buffer, UInt64(length), nil, 0, nil, nonce, key)
        let ciphertext = [UInt8](UnsafeBufferPointer(start: buffer, count: Int(sealed)))
        var opened: UInt64 = 0
        var failures = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            ciphertext.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: $0.count) }
            if crypto_aead_chacha20poly1305_ietf_decrypt(buffer, &opened, nil, buffer, sealed, nil, 0, nonce, key) != 0 { failures += 1 }
        }
        precondition(failures == 0, "libsodium opened what it sealed")
        blackHole(opened)
    }

    Benchmark("OpenSSL 3 EVP seal, 1280 bytes in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let context = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(context) }
        precondition(EVP_EncryptInit_ex(context, EVP_chacha20_poly1305(), nil, key, nil) == 1)
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 2048)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0x61, count: 2048)
        var nonce = [UInt8](repeating: 0, count: 12)
        var written: Int32 = 0
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            nonce[4] = UInt8(truncatingIfNeeded: iteration)
            _ = EVP_EncryptInit_ex(context, nil, nil, nil, nonce)
            _ = EVP_EncryptUpdate(context, buffer, &written, buffer, Int32(length))
            _ = EVP_EncryptFinal_ex(context, buffer + Int(written), &written)
            _ = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, buffer + length)
        }
        blackHole(written)
    }

    Benchmark("OpenSSL 3 EVP open, 1280 bytes in place", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let sealer = EVP_CIPHER_CTX_new()!, opener = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(sealer); EVP_CIPHER_CTX_free(opener) }
        let nonce = [UInt8](repeating: 0, count: 12)
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 2048)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0x61, count: 2048)
        var written: Int32 = 0
        precondition(EVP_EncryptInit_ex(sealer, EVP_chacha20_poly1305(), nil, key, nonce) == 1)
        _ = EVP_EncryptUpdate(sealer, buffer, &written, buffer, Int32(length))
        _ = EVP_EncryptFinal_ex(sealer, buffer + length, &written)
        _ = EVP_CIPHER_CTX_ctrl(sealer, EVP_CTRL_AEAD_GET_TAG, 16, buffer + length)
        let ciphertext = [UInt8](UnsafeBufferPointer(start: buffer, count: length + 16))
        precondition(EVP_DecryptInit_ex(opener, EVP_chacha20_poly1305(), nil, key, nil) == 1)
        var failures = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            ciphertext.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: $0.count) }
            _ = EVP_DecryptInit_ex(opener, nil, nil, nil, nonce)
            _ = EVP_DecryptUpdate(opener, buffer, &written, buffer, Int32(length))
            _ = EVP_CIPHER_CTX_ctrl(opener, EVP_CTRL_AEAD_SET_TAG, 16, buffer + length)
            if EVP_DecryptFinal_ex(opener, buffer + Int(written), &written) != 1 { failures += 1 }
        }
        precondition(failures == 0, "OpenSSL opened what it sealed")
        blackHole(written)
    }

    Benchmark("BoringSSL (swift-crypto ChaChaPoly) seal, 1280 bytes", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let symmetric = SymmetricKey(data: key)
        let plaintext = Data(repeating: 0x61, count: length)
        var nonceBytes = [UInt8](repeating: 0, count: 12)
        var sealedBytes = 0
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            nonceBytes[4] = UInt8(truncatingIfNeeded: iteration)
            let box = try ChaChaPoly.seal(plaintext, using: symmetric, nonce: try ChaChaPoly.Nonce(data: nonceBytes))
            sealedBytes &+= box.ciphertext.count
        }
        blackHole(sealedBytes)
    }

    Benchmark("BoringSSL (swift-crypto ChaChaPoly) open, 1280 bytes", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let symmetric = SymmetricKey(data: key)
        let box = try ChaChaPoly.seal(Data(repeating: 0x61, count: length), using: symmetric,
                                      nonce: try ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)))
        var openedBytes = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            openedBytes &+= try ChaChaPoly.open(box, using: symmetric).count
        }
        blackHole(openedBytes)
    }
}
