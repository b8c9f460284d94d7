import AppMetrics
import AppOptions
import AppRuntime
import ArgumentParser
import Foundation
import Logging
import SansIO
import TurnRelay
import UnixSignals

/// `firezone-relay`: a TURN relay with Firezone's semantics on UDP port 3478 (spec `snownet.md` §3.11, §3.12), and on
/// TCP port 3478 for networks that block UDP (RFC 8656 §3), joined to a portal when given a token. Exit 0 after SIGINT/SIGTERM, 1 on a fatal error (printed to stderr), 64 on
/// bad usage.
@main
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firezone-relay",
        abstract: "A TURN relay with Firezone's semantics: clients and gateways reach each other through it.",
        version: ProtocolLevel.toolkit
    )

    @OptionGroup var arguments: RelayArguments

    func run() async throws {
        let options: RelayOptions
        do {
            options = try RelayOptions.resolve(arguments, environment: ProcessInfo.processInfo.environment,
                                               hostname: ProcessInfo.processInfo.hostName)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        let filter = LogFilter(options.logFilter)
        FirezoneLogHandler.bootstrap(filter: filter, format: options.logFormat)
        let logger = Logger(label: "firezone_relay")
        for problem in filter.problems { logger.warning("Ignoring log filter directive \(problem)") }
        do {
            try await serve(options, logger: logger)
            logger.info("Goodbye!")
        } catch {
            logger.error("Failed to run the relay: \(error)")
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func serve(_ options: RelayOptions, logger: Logger) async throws {
        var configuration = RelayConfiguration(publicIPv4: options.publicIPv4, publicIPv6: options.publicIPv6, authentication: .firezone(secret: options.secret))
        if options.credentials == .coturnRestApi { configuration.authentication = .coturnRestApi(secret: options.secret) }
        configuration.listenPort = options.listenPort
        configuration.ports = options.ports
        configuration.software = "firezone-relay; rev=\(ProtocolLevel.toolkit)"
        let openFiles = RelayLoop.raiseOpenFileLimit()
        let core = RelayCore(configuration: configuration)
        let tls = try options.tls.map { tls in
            (port: tls.port, context: try TlsContext.server(certificateFile: tls.certificateFile, privateKeyFile: tls.privateKeyFile))
        }
        let loop = try RelayLoop(core: core, listenPort: options.listenPort, tcpListenPort: options.tcpListenPort, tls: tls,
                                 bindIPv4: options.bindIPv4, bindIPv6: options.bindIPv6,
                                 logger: Logger(label: "firezone_relay::relay"))
        logger.info("Starting", metadata: [
            "version": "\(ProtocolLevel.toolkit)", "public_ip4": "\(options.publicIPv4.map { "\($0)" } ?? "none")",
            "public_ip6": "\(options.publicIPv6.map { "\($0)" } ?? "none")", "ports": "\(options.ports.lowerBound)-\(options.ports.upperBound)",
            "credentials": "\(options.credentials.rawValue)", "open_files": "\(openFiles)",
            "portal": "\(options.portal.map { _ in "yes" } ?? "none (fixed secret)")",
        ])
        let link = try options.portal.map { portal in
            try RelayPortalLink(options: options, portal: portal, version: ProtocolLevel.toolkit, logger: logger)
        }
        logger.info("Listening for incoming traffic on UDP port \(options.listenPort)",
                    metadata: ["addresses": "\(loop.listeningAddresses.map(\.description).joined(separator: ", "))"])
        if let tcpPort = options.tcpListenPort {
            logger.info("Listening for incoming traffic on TCP port \(tcpPort)",
                        metadata: ["addresses": "\(loop.tcpListeningAddresses.map(\.description).joined(separator: ", "))"])
        }
        if let tls = options.tls {
            logger.info("Listening for incoming traffic on TLS port \(tls.port)",
                        metadata: ["addresses": "\(loop.tlsListeningAddresses.map(\.description).joined(separator: ", "))",
                                   "certificate": "\(tls.certificateFile)"])
        }
        let finished = DispatchSemaphore(value: 0)
        Thread {
            loop.run()
            finished.signal()
        }.start()
        defer {
            loop.stop()
            finished.wait()
        }
        let metrics = RelayMetrics.make()
        let health = HealthCheck(at: options.healthCheckAddress, label: "firezone_relay::health", ready: { link?.isReady ?? true }) {
            metrics.render(loop.snapshot)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await health.run() }
            if let link {
                // Not a child task: cancelling the channel's task would cut its connection instead of closing it.
                let portal = Task { try await link.run() }
                group.addTask {
                    do {
                        try await portal.value
                    } catch {
                        throw PortalFailure(reason: "\(error)")
                    }
                }
            }
            group.addTask {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    logger.info("Received \(signal == .sigterm ? "SIGTERM" : "SIGINT")")
                    return
                }
            }
            // The first to finish: a signal, the health check failing (its address taken), or the portal refusing us.
            // Then the portal connection closes (the task awaiting it ends with it) and the rest are cancelled.
            defer {
                link?.close()
                group.cancelAll()
            }
            try await group.next()
        }
    }
}

/// The portal refused the relay for good, or stayed away longer than the partition time.
struct PortalFailure: Error, CustomStringConvertible {
    var reason: String
    var description: String { "Portal connection failed: \(reason)" }
}
