import AppOptions
import AppRuntime
import ArgumentParser
import Foundation
import Logging

/// `firezone-gateway`: the gateway on a real TUN device and UDP sockets, taking its orders from the portal
/// (spec `portal-phoenix.md` §7.1). Exit 0 after SIGINT/SIGTERM, 1 on any fatal error, 64 on bad usage.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firezone-gateway",
        abstract: "The Firezone gateway: forwards authorised clients' traffic to the resources of its site.",
        version: ProtocolLevel.versionText(firezoneComponent: "gateway", firezoneVersion: ProtocolLevel.gateway)
    )

    @OptionGroup var arguments: GatewayArguments

    func run() async throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try GatewayConfiguration.resolve(arguments, environment: ProcessInfo.processInfo.environment,
                                                            hostname: ProcessInfo.processInfo.hostName)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        let filter = LogFilter(configuration.logFilter)
        FirezoneLogHandler.bootstrap(filter: filter, format: configuration.logFormat)
        let logger = Logger(label: "firezone_gateway")
        for problem in filter.problems { logger.warning("Ignoring log filter directive \(problem)") }
        if configuration.checkPrivileges, !Privileges.mayAdministerNetwork() {
            FileHandle.standardError.write(Data("firezone-gateway needs to run as root or with CAP_NET_ADMIN\n".utf8))
            throw ExitCode(1)
        }
        do {
            try await GatewayService(configuration: configuration, logger: logger).run()
            logger.info("Goodbye!")
        } catch {
            // Firezone logs even a runtime failure at INFO with this sentence (§7.1).
            logger.info("Failed to start Gateway: \(error)")
            throw ExitCode(1)
        }
    }
}
