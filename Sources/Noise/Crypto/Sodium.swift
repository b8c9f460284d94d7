import CSodium

/// libsodium must be initialized once per process: `sodium_init` picks the CPU-specific implementations
/// (AVX2 ChaCha20 here, 2.7× faster than the portable code it uses otherwise) and seeds its CSPRNG.
enum Sodium {
    /// Evaluated once, thread-safely, by the first type that touches it.
    static let isInitialized: Bool = sodium_init() >= 0

    static func initialize() {
        _ = isInitialized
    }
}
