import AppMetrics
import AppOptions
import ArgumentParser
import Foundation

/// `firezone-client` runs the client (`ClientCommand`); `firezone-client status` asks the running one for its connections
/// (`ClientStatusCommand`).
@main
enum ClientMain {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.first == "status" else { return await ClientCommand.main(arguments) }
        ClientStatusCommand.main(Array(arguments.dropFirst()))
    }
}

/// `firezone-client status`: each peer's path (direct, or relayed through which relay), RTT, latest handshake, traffic,
/// resources and ICE candidate pair, read from the running client's status socket. Exit 0, 1 when the client
/// cannot be asked, 64 on bad usage.
struct ClientStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firezone-client status",
        abstract: "Shows the running client's connections: path, relay, RTT, handshake, traffic and resources per peer."
    )

    @OptionGroup var arguments: StatusArguments

    func run() throws {
        let path = arguments.socketPath(environment: ProcessInfo.processInfo.environment,
                                        defaultPath: StatusSocket.defaultPath(for: "firezone-client"))
        let status = StatusSocket.printStatus(from: path, json: arguments.json, tool: "firezone-client")
        guard status == 0 else { throw ExitCode(status) }
    }
}
