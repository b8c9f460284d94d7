import AppMetrics
import AppOptions
import AppRuntime
import AppShell

import Foundation
import Hummingbird
import Logging
import Noise
import PhoenixChannel
import PhoenixChannelTransport
import PortalMessages
import SansIO
import Tunnel
import UnixSignals

/// The gateway's pieces wired together: the TUN device and sockets on an ``EventLoop`` driving `GatewayState`,
/// the portal channel feeding it, DNS resolution on worker threads, the health check, and graceful shutdown.
struct GatewayService {
    /// Firezone's tunnel ranges: the gateway routes replies to clients into the tunnel.
    static let tunnelRanges = [IpNetwork("100.64.0.0/11")!, IpNetwork("fd00:2021:1111::/107")!]

    let configuration: GatewayConfiguration
    let logger: Logger

    func run() async throws {
        if configuration.raiseSocketBuffers {
            for outcome in SocketBufferLimits.raise(to: configuration.socketBuffers) { logger.info("\(outcome)") }
        }
        let nameservers = NameserverSet(try ResolvConf.nameservers())
        let id = try configuration.id ?? DeviceId.getOrCreate(.gateway)
        let key = SecretKey.generatePrivateKey()
        let url = try LoginUrl(apiUrl: configuration.apiUrl, mode: .gateway, token: configuration.token,
                               device: .init(id: id, name: configuration.name), api: configuration.portalApi)
        let channel = PortalChannel<GatewayIngress>(
            configuration: .init(url: url, publicKey: key.publicKey.base64,
                                 userAgent: .current(component: .gateway, version: ProtocolLevel.gateway),
                                 maxElapsed: configuration.maxPartitionTime),
            topic: "gateway", logger: Logger(label: "firezone_gateway::portal"))
        logger.info("Starting", metadata: [
            "version": "\(ProtocolLevel.toolkit)", "protocol": "gateway/\(ProtocolLevel.gateway)", "portal_api": "\(configuration.portalApi)",
            "max_partition_time": "\(configuration.maxPartitionTime)",
        ])

        let tun = try TunDevice.preferringOffloads()
        let netlink = try RouteNetlink()
        try netlink.setLink(index: tun.index, up: true, mtu: 1280, transmitQueueLength: 10_000)
        let masquerade = Masquerade(logger: logger)
        masquerade.install()
        defer { masquerade.remove() }
        let sockets = try AppShell<GatewayState>.bindSockets(options: UdpSocket.Options(buffers: configuration.socketBuffers), logger: logger)
        let keyLog = try configuration.keyLogFile.map { path throws(KeyLogFileError) in try KeyLogFile(path: path, logger: logger) }
        let state = GatewayState(privateKey: key, now: MonotonicClock.now(),
                                 unixTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1_000_000_000),
                                 keyLog: keyLog.map { file in { file.write($0) } })
        state.tracksFlows = FlowLog.isEnabled(by: configuration.logFilter)
        let workers = GatewayWorkers(nameservers: nameservers, logger: logger)
        let interface = InterfaceConfigurator(netlink: netlink, index: tun.index, logger: logger)
        let eventLogger = Logger(label: "firezone_gateway::eventloop")
        let shell = try AppShell(plane: state, tun: tun, sockets: sockets, channel: channel, logger: logger) { state, _ in
            while let flow = state.pollFlowRecord() { FlowLog.log(flow) }
            while let event = state.pollEvent() {
                switch event {
                case let .interfaceConfigured(ipv4, ipv6): interface.apply(ipv4: ipv4, ipv6: ipv6)
                case .resolve(let request): workers.resolve(request)
                case .forwardDns(let query): workers.forward(query)
                case .noRelays: channel.requestRelays(logger: eventLogger)
                case .refused(let reason): eventLogger.warning("Refused portal message: \(reason)")
                }
            }
        }
        // Goodbye to every peer on every way out, a refusal by the portal included (#10401).
        defer {
            shell.stop()
            interface.remove()
        }
        let loop = shell.loop
        workers.loop = loop
        logger.info("Listening on \(sockets.map(\.localAddress).map(\.description).joined(separator: ", "))")

        try await withThrowingTaskGroup(of: Void.self) { group in
            let metrics = GatewayMetrics.make()
            let health = HealthCheck(at: configuration.healthCheckAddress, label: "firezone_gateway::health") {
                GatewayMetrics.render(metrics, await GatewayMetrics.sample(loop))
            }
            group.addTask { try await health.run() }
            if let path = configuration.statusSocket {
                group.addTask { await StatusServer.serve(path: path, label: "firezone_gateway::status", logger: logger) { await GatewayMetrics.status(loop) } }
            }
            switch configuration.metrics {
            case .stdout?: group.addTask { await MetricsPrinter.run { GatewayMetrics.render(metrics, await GatewayMetrics.sample(loop)) } }
            case .otelCollector?: logger.warning("Metrics export to an OpenTelemetry collector is not supported; GET /metrics has them")
            case nil: break
            }
            group.addTask { try await Self.evaluate(nameservers, logger: logger) }
            group.addTask {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    logger.info("Received \(signal == .sigterm ? "SIGTERM" : "SIGINT")")
                    channel.close()
                    return
                }
            }
            try await shell.runPortal(host: url.host)
            group.cancelAll()
        }
    }

    /// Ranks the system nameservers now and every 60 s (spec `tunnel-dns.md` §5.9), until cancelled.
    static func evaluate(_ nameservers: NameserverSet, logger: Logger) async throws {
        guard !nameservers.nameservers.isEmpty else { return }
        while true {
            let probes = await nameservers.evaluate()
            let answered = probes.filter { $0.rcode == .noError }.count
            logger.debug("Evaluated fastest nameserver", metadata: [
                "fastest": "\(nameservers.fastest.map(\.description) ?? "none")", "noerror_answers": "\(answered) of \(probes.count)",
            ])
            try await Task.sleep(for: NameserverSet.evaluationInterval)
        }
    }
}
