// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-firezone",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SansIO", targets: ["SansIO"]),
        .library(name: "IpPacket", targets: ["IpPacket"]),
        .library(name: "TunOffload", targets: ["TunOffload"]),
        .library(name: "PcapFile", targets: ["PcapFile"]),
        .library(name: "Noise", targets: ["Noise"]),
        .library(name: "Stun", targets: ["Stun"]),
        .library(name: "Turn", targets: ["Turn"]),
        .library(name: "TurnRelay", targets: ["TurnRelay"]),
        .library(name: "Ice", targets: ["Ice"]),
        .library(name: "Dns", targets: ["Dns"]),
        .library(name: "DnsNat", targets: ["DnsNat"]),
        .library(name: "P2pControl", targets: ["P2pControl"]),
        .library(name: "PhoenixChannel", targets: ["PhoenixChannel"]),
        .library(name: "PhoenixChannelTransport", targets: ["PhoenixChannelTransport"]),
        .library(name: "PortalMessages", targets: ["PortalMessages"]),
        .library(name: "FlowBroker", targets: ["FlowBroker"]),
        .library(name: "Tunnel", targets: ["Tunnel"]),
        .library(name: "SimulatedNetwork", targets: ["SimulatedNetwork"]),
        .executable(name: "firezone-pcap-replay", targets: ["PcapReplay"]),
        .executable(name: "firezone-portal", targets: ["Portal"]),
        .executable(name: "firezone-gateway", targets: ["Gateway"]),
        .executable(name: "firezone-client", targets: ["Client"]),
        .executable(name: "firezone-relay", targets: ["Relay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // System libraries, bound through pkg-config and a one-line shim header each.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CBlake2", pkgConfig: "libb2", providers: [.apt(["libb2-dev"])]),
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(name: "CLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLibssl", pkgConfig: "libssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLinuxTun"),  // header only: the TUN ioctl request codes
        .systemLibrary(name: "CLinuxNetlink"),  // header only: rtnetlink and policy-routing structures
        .systemLibrary(name: "CLinuxIO"),  // header only: epoll, eventfd, recvmmsg/sendmmsg, UDP offloads

        // Protocol layers.
        .target(name: "SansIO"),
        .target(name: "IpPacket", dependencies: ["SansIO"]),
        .target(name: "PcapFile", dependencies: ["CPcap"]),
        .target(name: "Noise", dependencies: ["SansIO", "CSodium", "CBlake2", "CLibcrypto"]),
        .target(name: "Stun", dependencies: ["SansIO", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Turn", dependencies: ["Stun", "SansIO", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "TurnRelay", dependencies: ["Stun", "SansIO", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Ice", dependencies: ["Stun", "SansIO"]),
        .target(name: "Dns", dependencies: ["IpPacket"]),
        .target(name: "DnsNat", dependencies: ["Dns", "P2pControl", "IpPacket"]),
        .target(name: "P2pControl", dependencies: ["Dns", "IpPacket"]),
        .target(name: "PhoenixChannel", dependencies: ["SansIO", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "PhoenixChannelTransport", dependencies: [
            "PhoenixChannel", "SansIO",
            .product(name: "WSClient", package: "swift-websocket"), .product(name: "WSCore", package: "swift-websocket"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "PortalMessages", dependencies: ["SansIO", "Ice", "PhoenixChannel"]),
        // The portal's flow rule (create_flow → authorize_flow → flow_authorized → flow_created), written once.
        .target(name: "FlowBroker", dependencies: ["PortalMessages", "SansIO"]),
        .target(name: "Tunnel", dependencies: [
            "SansIO", "Stun", "Turn", "Ice", "Noise", "IpPacket", "Dns", "DnsNat", "P2pControl", "PortalMessages",
        ]),

        // An in-memory network on a virtual clock, with NATs and relays: simulations, fuzzing and the replay.
        .target(name: "SimulatedNetwork", dependencies: [
            "SansIO", "Stun", "Turn", "TurnRelay", .product(name: "HeapModule", package: "swift-collections"),
        ]),

        // The IO shell the tools share: TUN device, rtnetlink, sockets, event loop.
        // Frames of a TUN device with IFF_VNET_HDR: TCP super-packets cut and joined, partial checksums completed.
        .target(name: "TunOffload", dependencies: ["IpPacket"]),
        .target(name: "AppRuntime", dependencies: [
            "SansIO", "IpPacket", "Dns", "TunOffload", "Turn", "Tunnel", "CLinuxTun", "CLinuxNetlink", "CLinuxIO", "CLibssl",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // What the client and the gateway share around their tunnel: the data plane's loop and the portal channel.
        .target(name: "AppShell", dependencies: [
            "AppRuntime", "PhoenixChannel", "PhoenixChannelTransport", "PortalMessages", "Tunnel", "Noise", "SansIO",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Tools.
        // The apps' metrics: their own totals mirrored into swift-metrics, Prometheus text, `--metrics stdout`.
        .target(
            name: "AppMetrics",
            dependencies: ["AppRuntime", "Ice", "SansIO", "Tunnel", "Turn", .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .target(
            name: "AppOptions",
            dependencies: ["AppRuntime", "PhoenixChannel", "SansIO", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "Replay",
            dependencies: [
                "IpPacket", "PcapFile", "SansIO", "Stun", "Turn", "Noise", "Dns", "DnsNat", "PortalMessages", "Tunnel", "PortalInput",
                "FlowBroker", "SimulatedNetwork",
            ]
        ),
        .executableTarget(
            name: "PcapReplay",
            dependencies: [
                "IpPacket", "Noise", "PcapFile", "Replay",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Apps/PcapReplay"
        ),

        .executableTarget(
            name: "Relay",
            dependencies: [
                "AppOptions", "AppMetrics", "AppRuntime", "CLinuxIO", "SansIO", "Turn", "TurnRelay", "PhoenixChannel",
                "PhoenixChannelTransport", "PortalMessages",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Apps/Relay"
        ),
        .executableTarget(
            name: "Gateway",
            dependencies: [
                "AppOptions", "AppMetrics", "AppRuntime", "AppShell", "Noise", "PhoenixChannel", "PhoenixChannelTransport",
                "PortalMessages", "SansIO", "Tunnel", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Apps/Gateway"
        ),
        .executableTarget(
            name: "Client",
            dependencies: [
                "AppOptions", "AppMetrics", "AppRuntime", "AppShell", "DnsNat", "Noise", "PhoenixChannel", "PhoenixChannelTransport",
                "PortalMessages", "SansIO", "Tunnel", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"), .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Apps/Client"
        ),
        .target(
            name: "PortalInput",
            dependencies: [
                "PortalMessages", "SansIO", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "PortalServer",
            dependencies: [
                "FlowBroker", "PortalInput", "PortalMessages", "PhoenixChannel", "SansIO",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "WSCore", package: "swift-websocket"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "Portal",
            dependencies: [
                "PortalServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Apps/Portal"
        ),

        // libFuzzer harnesses: `scripts/fuzz <harness>` builds them with the sanitizer recipe;
        // a plain `swift build` compiles them as harmless executables.
        .executableTarget(name: "FuzzIpPacket", dependencies: ["IpPacket", "P2pControl"], path: "Fuzz/IpPacket"),
        .executableTarget(name: "FuzzNoise", dependencies: ["Noise", "SansIO"], path: "Fuzz/Noise"),
        .executableTarget(name: "FuzzStun", dependencies: ["Stun"], path: "Fuzz/Stun"),
        .executableTarget(name: "FuzzChannelData", dependencies: ["Turn"], path: "Fuzz/ChannelData"),
        .executableTarget(name: "FuzzStreamFraming", dependencies: ["Turn"], path: "Fuzz/StreamFraming"),
        .executableTarget(name: "FuzzIceCandidate", dependencies: ["Ice"], path: "Fuzz/IceCandidate"),
        .executableTarget(name: "FuzzDns", dependencies: ["Dns", "DnsNat", "SansIO"], path: "Fuzz/Dns"),
        .executableTarget(name: "FuzzP2pControl", dependencies: ["P2pControl", "IpPacket"], path: "Fuzz/P2pControl"),
        .executableTarget(name: "FuzzTcpDns", dependencies: ["Dns", "DnsNat", "IpPacket", "SansIO"], path: "Fuzz/TcpDns"),
        .executableTarget(name: "FuzzDissect", dependencies: ["Replay", "Noise", "Stun", "PcapFile"], path: "Fuzz/Dissect"),
        .executableTarget(name: "FuzzPortalInput", dependencies: ["PortalInput"], path: "Fuzz/PortalInput"),
        .executableTarget(name: "FuzzTunnelProto", dependencies: ["TunnelSimulation"], path: "Fuzz/TunnelProto"),
        .executableTarget(name: "FuzzNodeIngress", dependencies: ["TunnelSimulation", "Tunnel", "SansIO"], path: "Fuzz/NodeIngress"),
        .executableTarget(name: "FuzzTunOffload", dependencies: ["TunOffload", "IpPacket"], path: "Fuzz/TunOffload"),
        .executableTarget(name: "FuzzPcapReplay", dependencies: ["Replay", "PcapFile"], path: "Fuzz/PcapReplay"),
        .executableTarget(name: "FuzzPortalMessage", dependencies: ["PhoenixChannel", "PortalMessages", "SansIO"], path: "Fuzz/PortalMessage"),
        .executableTarget(name: "FuzzRelayCore", dependencies: ["TurnRelay", "Stun", "SansIO"], path: "Fuzz/RelayCore"),
        .executableTarget(name: "FuzzPortalRefusal", dependencies: ["PhoenixChannel", "PortalMessages", "SansIO"], path: "Fuzz/PortalRefusal"),

        // Tests.
        .testTarget(
            name: "IpPacketTests",
            dependencies: [
                "IpPacket", "PcapFile", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(name: "SansIOTests", dependencies: ["SansIO"]),
        .testTarget(name: "SimulatedNetworkTests", dependencies: ["SimulatedNetwork", "SansIO"]),
        .testTarget(name: "FlowBrokerTests", dependencies: ["FlowBroker", "PortalMessages", "Ice", "SansIO"]),
        .testTarget(name: "AppOptionsTests", dependencies: ["AppOptions", "AppRuntime", "PhoenixChannel", "SansIO", "TestSupport"]),
        .testTarget(name: "AppRuntimeTests", dependencies: [
            "AppRuntime", "CLinuxNetlink", "CLinuxIO", "IpPacket", "Dns", "SansIO", "TestSupport", "Tunnel", "PortalMessages", "Noise",
            "FlowBroker", "AppMetrics", "Turn", "Stun",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The binaries end to end in network namespaces: portal, coturn, gateway, client and a resource host.
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport"]),
        .testTarget(name: "TunOffloadTests", dependencies: ["TunOffload", "IpPacket", "SansIO"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CSodium", "CBlake2", "CPcap", "PcapFile"]),
        .testTarget(name: "PcapFileTests", dependencies: ["PcapFile", "TestSupport"]),
        .testTarget(name: "PcapReplayTests", dependencies: ["Replay", "PcapFile", "IpPacket", "SansIO", "TestSupport"]),
        .testTarget(name: "StunTests", dependencies: ["Stun", "SansIO", "IpPacket", "PcapFile", "TestSupport"]),
        .testTarget(name: "IceTests", dependencies: ["Ice", "Stun", "SansIO", "TestSupport"]),
        .testTarget(name: "DnsTests", dependencies: ["Dns", "IpPacket", "SansIO", "TestSupport"]),
        .testTarget(name: "DnsNatTests", dependencies: [
            "Dns", "DnsNat", "P2pControl", "IpPacket", "PcapFile", "TestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "P2pControlTests", dependencies: ["P2pControl", "Dns", "IpPacket", "SansIO"]),
        .testTarget(name: "PhoenixChannelTests", dependencies: [
            "PhoenixChannel", "PhoenixChannelTransport", "SansIO", "TestSupport", .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .testTarget(name: "PortalServerTests", dependencies: [
            "PortalServer", "Portal", "Relay", "PortalMessages", "PhoenixChannel", "PhoenixChannelTransport", "SansIO", "Ice", "TestSupport",
            "Tunnel", "Noise", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PortalMessagesTests", dependencies: ["PortalMessages", "PhoenixChannel", "Ice", "SansIO"]),
        .testTarget(name: "TurnRelayTests", dependencies: ["TurnRelay", "Turn", "Stun", "SansIO", "TestSupport"]),
        .testTarget(name: "TurnTests", dependencies: [
            "Turn", "Stun", "SansIO", "IpPacket", "PcapFile", "TestSupport", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "TunnelTests", dependencies: [
            "Tunnel", "Turn", "Stun", "Ice", "Noise", "SansIO", "IpPacket", "Dns", "DnsNat", "P2pControl", "PortalMessages", "TestSupport",
            "CLinuxTun", "TunnelSimulation", "TurnRelay",
        ]),
        // Sockets, clocks and shell helpers the interop tests share.
        .target(name: "TestSupport", dependencies: ["SansIO", "CLinuxNetlink"], path: "Tests/Support/TestSupport"),
        // The tunnel simulation and its reference model: shared by TunnelTests and Fuzz/TunnelProto, on public API.
        .target(
            name: "TunnelSimulation",
            dependencies: [
                "Tunnel", "Turn", "Ice", "Noise", "SansIO", "IpPacket", "Dns", "P2pControl", "PortalMessages", "FlowBroker",
                "SimulatedNetwork",
            ],
            path: "Tests/Support/TunnelSimulation"
        ),
        .testTarget(name: "NoiseTests", dependencies: ["Noise", "SansIO", "IpPacket", "PcapFile", "CSodium", "TestSupport", "WireGuardInteropPeer"]),
        // The wireguard-go interop tests run this peer on a real TUN device and UDP socket.
        .executableTarget(name: "WireGuardInteropPeer", dependencies: ["Noise", "SansIO", "CLinuxTun"],
                          path: "Tests/Support/WireGuardInteropPeer"),
    ],
    swiftLanguageModes: [.v6]
)
