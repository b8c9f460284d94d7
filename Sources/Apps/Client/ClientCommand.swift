import AppOptions
import AppRuntime
import ArgumentParser
import Foundation
import Logging
import PhoenixChannel

/// `firezone-client`: the headless Linux client (spec `portal-phoenix.md` §7.2). Exit 0 after SIGINT/SIGTERM (or
/// with `--check`/`--exit`), 1 on any error (printed to stderr), 64 on bad usage.
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firezone-client",
        abstract: "The Firezone headless client: routes the resources of its policies through gateways.",
        version: ProtocolLevel.versionText(firezoneComponent: "headless-client", firezoneVersion: ProtocolLevel.headlessClient)
    )

    @OptionGroup var arguments: ClientArguments

    func run() async throws {
        // Before anything else may copy the environment (§7.2 step 2).
        let environmentToken = ClientToken.takeFromEnvironment()
        do {
            let configuration = try ClientConfiguration.resolve(arguments, environment: ProcessInfo.processInfo.environment,
                                                                hostname: ProcessInfo.processInfo.hostName)
            let filter = LogFilter(configuration.logFilter)
            let logFile = try configuration.logDirectory.map { directory throws(SystemCallError) in
                try LogSink.file(in: directory, prefix: "firezone-headless-client", secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
            }
            FirezoneLogHandler.bootstrap(filter: filter, format: .human, also: logFile.map { [$0] } ?? [])
            let logger = Logger(label: "firezone_headless_client")
            for problem in filter.problems { logger.warning("Ignoring log filter directive \(problem)") }
            let token = try ClientToken.read(environmentToken: environmentToken, path: configuration.tokenPath)
            if environmentToken == nil { logger.info("Loaded token from disk", metadata: ["path": "\(configuration.tokenPath)"]) }
            let id = try configuration.id ?? DeviceId.getOrCreate(.client)
            let url = try LoginUrl(apiUrl: configuration.apiUrl, mode: .client, token: token, device: .init(id: id, name: configuration.name),
                                   api: configuration.portalApi)
            if configuration.checkOnly {
                logger.info("Check passed", metadata: ["url": "\(url)"])
                return
            }
            try await ClientService(configuration: configuration, url: url, logger: logger).run()
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
