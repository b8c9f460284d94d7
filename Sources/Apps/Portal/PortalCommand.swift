import ArgumentParser
import Foundation
import Hummingbird
import Logging
import PortalServer
import ServiceLifecycle
import UnixSignals

/// `firezone-portal`: a development portal for running clients and gateways end to end without a SaaS account.
@main
struct PortalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firezone-portal",
        abstract: "A development portal: serves /client/websocket and /gateway/websocket from one YAML file.",
        discussion: """
            SIGHUP reloads the configuration and pushes the differences to connected clients and gateways.
            SIGTERM and SIGINT close every connection and exit 0.
            Exit codes: 0 stopped, 1 could not serve, 66 configuration file unreadable, 78 configuration invalid.
            """)

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    @Option(name: .long, help: "Address and port to listen on (port 0 picks a free one).")
    var listen: String = "127.0.0.1:8080"

    @Option(name: .long, help: "SQLite database keeping devices and their tunnel addresses across restarts.")
    var database: String = "firezone-portal.sqlite"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        var configuredLogger = Logger(label: "firezone-portal")
        configuredLogger.logLevel = logLevel
        let logger = configuredLogger
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be host:port, not '\(listen)'")
        }
        let host = String(listen[..<colon]).trimmingCharacters(in: ["[", "]"])
        let path = config
        let portalConfig = Self.loadConfig(path)
        let store: DeviceStore
        do {
            store = try DeviceStore(path: database)
        } catch {
            Self.fail("cannot open the database \(database): \(error)", code: 1)
        }
        let state = PortalState(config: portalConfig, store: store, logger: logger)
        let app = PortalServer.application(state: state, store: store, host: host, port: port, logger: logger) { port in
            announce("listening on \(host):\(port)")
        }
        let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    do {
                        await state.reload(try Self.parseConfig(path))
                        announce("configuration reloaded")
                    } catch {
                        logger.error("Reload failed; keeping the previous configuration", metadata: ["error": "\(error)"])
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(60))
                    await state.expireAccess()
                }
            }
            do {
                try await services.run()
            } catch {
                Self.fail("cannot serve on \(host):\(port): \(error)", code: 1)
            }
            group.cancelAll()
        }
    }

    /// The configuration, or exit 66 (unreadable) / 78 (invalid) with the reason on stderr.
    private static func loadConfig(_ path: String) -> PortalConfig {
        do {
            return try parseConfig(path)
        } catch let error as ConfigError {
            fail("\(path): \(error)", code: 78)
        } catch {
            fail("cannot read \(path): \(error.localizedDescription)", code: 66)
        }
    }

    private static func parseConfig(_ path: String) throws -> PortalConfig {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try PortalConfig(yaml: text)
    }

    private static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("firezone-portal: \(message)\n".utf8))
        Foundation.exit(code)
    }
}

/// A progress line on stdout, flushed at once (tests and scripts wait for these).
private func announce(_ message: String) {
    FileHandle.standardOutput.write(Data("firezone-portal: \(message)\n".utf8))
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
