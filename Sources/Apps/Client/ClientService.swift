import AppMetrics
import AppOptions
import AppRuntime
import AppShell

import Foundation
import Logging
import Noise
import PhoenixChannel
import PhoenixChannelTransport
import PortalMessages
import SansIO
import Tunnel
import UnixSignals

/// The client's pieces wired together: TUN device and marked sockets on an ``EventLoop`` driving `ClientState`,
/// the portal channel feeding it, the TUN configuration applied over rtnetlink, recursion to the system's
/// resolvers, and the signals of §7.2 (SIGHUP resets, SIGINT/SIGTERM shut down).
struct ClientService {
    /// Firezone's routing table and firewall mark on Linux (spec `tunnel-dns.md` §4.11).
    static let table: UInt32 = 0x2021_FD00
    static let mark: UInt32 = 0xFD00_2021

    let configuration: ClientConfiguration
    let url: LoginUrl
    let logger: Logger

    /// The tunnel's sockets, marked so their traffic bypasses the tunnel's routes. The first ones try Firezone's
    /// listen port; a reset's take new ports, since relays key allocations by the 3-tuple.
    static func makeSockets(buffers: SocketBufferSizes, preferredPort: UInt16, logger: Logger) throws -> [UdpSocket] {
        try AppShell<ClientState>.bindSockets(options: UdpSocket.Options(firewallMark: mark, buffers: buffers),
                                              preferredPort: preferredPort, logger: logger)
    }

    func run() async throws {
        let dnsControl = SystemDnsControl(method: configuration.dnsControl, logger: Logger(label: "firezone_headless_client::dns_control"))
        dnsControl.deactivate()
        if configuration.raiseSocketBuffers {
            for outcome in SocketBufferLimits.raise(to: configuration.socketBuffers) { logger.info("\(outcome)") }
        }
        let key = SecretKey.generatePrivateKey()
        let channel = PortalChannel<ClientIngress>(
            configuration: .init(url: url, publicKey: key.publicKey.base64,
                                 userAgent: .current(component: .headlessClient, version: ProtocolLevel.headlessClient),
                                 maxElapsed: configuration.maxPartitionTime, firewallMark: Self.mark),
            topic: "client", logger: Logger(label: "firezone_headless_client::portal"))
        logger.info("Starting", metadata: [
            "version": "\(ProtocolLevel.toolkit)", "protocol": "headless-client/\(ProtocolLevel.headlessClient)",
            "portal_api": "\(url.api)",
        ])
        let tun = try TunDevice.preferringOffloads()
        let netlink = try RouteNetlink()
        try netlink.setLink(index: tun.index, up: true, mtu: 1280)
        let sockets = try Self.makeSockets(buffers: configuration.socketBuffers,
                                           preferredPort: AppShell<ClientState>.defaultListenPort, logger: logger)
        let keyLog = try configuration.keyLogFile.map { path throws(KeyLogFileError) in try KeyLogFile(path: path, logger: logger) }
        let state = ClientState(privateKey: key, now: MonotonicClock.now(), unixTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1_000_000_000),
                                internetResourceEnabled: configuration.activateInternetResource, keyLog: keyLog.map { file in { file.write($0) } })
        state.setSystemResolvers(dnsControl.systemResolvers())
        let routing = ClientRouting(netlink: netlink, index: tun.index, table: Self.table, mark: Self.mark, logger: logger)
        let ready = ReadySignal(exitWhenReady: configuration.exitWhenReady, logger: logger) { channel.close() }
        let recursion = RecursionWorker()
        let eventLogger = Logger(label: "firezone_headless_client::eventloop")
        let shell = try AppShell(plane: state, tun: tun, sockets: sockets, channel: channel, logger: logger, firewallMark: Self.mark) { state, _ in
            while let event = state.pollEvent() {
                switch event {
                case .tunInterfaceUpdated(let config):
                    routing.apply(config)
                    dnsControl.apply(config)
                    ready.fire()
                case let .recurseDns(pending, upstream): recursion.recurse(pending, via: upstream)
                case .refused(let reason): eventLogger.warning("Refused portal message: \(reason)")
                case .ignored(let push) where push.resourceType != nil:
                    eventLogger.info("Ignoring a resource of a type this client does not implement: \(push)")
                case .ignored(let push): eventLogger.debug("Ignoring a portal message this client does not implement: \(push)")
                case .resourcesChanged: dnsControl.flush()
                case .noRelays: channel.requestRelays(logger: eventLogger)
                case .proxyIpRecordsChanged: break
                }
            }
        }
        let loop = shell.loop
        recursion.loop = loop
        // A reset (spec snownet.md §1.9): new sockets, since relays key allocations by the 3-tuple, a new key and
        // no connections, then a new portal connection with the new public key for a fresh `init`.
        let resetSession = { @Sendable (reason: String) in
            loop.replaceSockets({ [buffers = configuration.socketBuffers] in
                try Self.makeSockets(buffers: buffers, preferredPort: 0, logger: logger)
            }) { error in
                logger.error("Failed to make new UDP sockets for the reset; keeping the old ones: \(error)")
            }
            loop.execute { state, now in
                state.reset(now: now)
                channel.reconnect(reason: reason, publicKey: state.publicKey.base64)
            }
        }
        let networkChanges = try? NetworkChangeMonitor(ignoring: tun.index) {
            logger.info("Network changed: resetting the session")
            resetSession("network changed")
        }
        defer { networkChanges?.stop() }
        defer {
            routing.remove()
            dnsControl.deactivate()
        }
        // Goodbye to every peer on every way out, a refusal by the portal included (#10401); before the routes go.
        defer { shell.stop() }

        try await withThrowingTaskGroup(of: Void.self) { group in
            switch configuration.metrics {
            case .stdout?:
                let metrics = ClientMetrics.make()
                group.addTask { await MetricsPrinter.run { ClientMetrics.render(metrics, await ClientMetrics.sample(loop)) } }
            case .otelCollector?: logger.warning("Metrics export to an OpenTelemetry collector is not supported; use --metrics stdout")
            case nil: break
            }
            if let path = configuration.statusSocket {
                group.addTask {
                    await StatusServer.serve(path: path, label: "firezone_headless_client::status", logger: logger) { await ClientMetrics.status(loop) }
                }
            }
            group.addTask {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup) {
                    if signal == .sighup {
                        logger.info("Caught SIGHUP: resetting the session")
                        resetSession("SIGHUP")
                        continue
                    }
                    logger.info("Caught \(signal == .sigterm ? "SIGTERM" : "SIGINT")")
                    channel.close()
                    return
                }
            }
            try await shell.runPortal(host: url.host)
            group.cancelAll()
        }
    }
}
