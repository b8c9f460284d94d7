// swift-tools-version: 6.1
// Benchmarks live in their own package so the main build does not pull in ordo-one/benchmark.
// Run from this folder: `swift package benchmark` (see BENCHMARKS.md).
import PackageDescription

let package = Package(
    name: "swift-firezone-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-firezone", path: ".."),
        // The trait list replaces the default one, which would pull in a package this machine lacks.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        // BoringSSL, for the AEAD comparison only.
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
    ],
    targets: [
        // The raw libsodium calls the WireGuard data path is measured against.
        .systemLibrary(name: "CSodiumRaw", pkgConfig: "libsodium"),
        // OpenSSL 3's libcrypto (Debian's libssl-dev), for the AEAD comparison.
        .systemLibrary(name: "COpenSSLCrypto", pkgConfig: "libcrypto"),
        .executableTarget(
            name: "AeadBenchmarks",
            dependencies: [
                "CSodiumRaw", "COpenSSLCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/AeadBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "NoiseBenchmarks",
            dependencies: [
                "CSodiumRaw",
                .product(name: "Noise", package: "swift-firezone"),
                .product(name: "SansIO", package: "swift-firezone"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/NoiseBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "DnsBenchmarks",
            dependencies: [
                .product(name: "Dns", package: "swift-firezone"),
                .product(name: "DnsNat", package: "swift-firezone"),
                .product(name: "IpPacket", package: "swift-firezone"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/DnsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "IceBenchmarks",
            dependencies: [
                .product(name: "Ice", package: "swift-firezone"),
                .product(name: "SansIO", package: "swift-firezone"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/IceBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "TurnBenchmarks",
            dependencies: [
                .product(name: "Stun", package: "swift-firezone"),
                .product(name: "Turn", package: "swift-firezone"),
                .product(name: "SansIO", package: "swift-firezone"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/TurnBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "IpPacketBenchmarks",
            dependencies: [
                .product(name: "IpPacket", package: "swift-firezone"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/IpPacketBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "TunOffloadBenchmarks",
            dependencies: [
                .product(name: "TunOffload", package: "swift-firezone"),
                .product(name: "IpPacket", package: "swift-firezone"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/TunOffloadBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "TunnelBenchmarks",
            dependencies: [
                .product(name: "Tunnel", package: "swift-firezone"),
                .product(name: "PortalMessages", package: "swift-firezone"),
                .product(name: "Noise", package: "swift-firezone"),
                .product(name: "Stun", package: "swift-firezone"),
                .product(name: "Turn", package: "swift-firezone"),
                .product(name: "Ice", package: "swift-firezone"),
                .product(name: "SansIO", package: "swift-firezone"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/TunnelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // glibc's heap counters, which the Glibc module does not export.
        .target(name: "CHeapInUse", path: "Sources/CHeapInUse"),
        // One gateway node and N client nodes in memory: connections/s, heap per client, packets/s (scripts/bench/gateway-clients).
        .executableTarget(
            name: "GatewayScale",
            dependencies: [
                .product(name: "Tunnel", package: "swift-firezone"),
                .product(name: "PortalMessages", package: "swift-firezone"),
                .product(name: "Stun", package: "swift-firezone"),
                .product(name: "Turn", package: "swift-firezone"),
                .product(name: "SansIO", package: "swift-firezone"),
                .product(name: "Noise", package: "swift-firezone"),
                .product(name: "Ice", package: "swift-firezone"),
                "CHeapInUse",
            ],
            path: "Sources/GatewayScale"
        ),
    ],
    swiftLanguageModes: [.v6]
)
