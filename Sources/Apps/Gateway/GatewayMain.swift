import AppMetrics
import AppOptions
import ArgumentParser
import Foundation

/// `firezone-gateway` runs the gateway (`GatewayCommand`); `firezone-gateway status` asks the running one for its connections
/// (`GatewayStatusCommand`).
@main
enum GatewayMain {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.first == "status" else { return await GatewayCommand.main(arguments) }
        GatewayStatusCommand.main(Array(arguments.dropFirst()))
    }
}

/// `firezone-gateway status`: each peer's path (direct, or relayed through which relay), RTT, latest handshake, traffic,
/// resources and ICE candidate pair, read from the running gateway's status socket. Exit 0, 1 when the gateway
/// cannot be asked, 64 on bad usage.
struct GatewayStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firezone-gateway status",
        abstract: "Shows the running gateway's connections: path, relay, RTT, handshake, traffic and resources per peer."
    )

    @OptionGroup var arguments: StatusArguments

    func run() throws {
        let path = arguments.socketPath(environment: ProcessInfo.processInfo.environment,
                                        defaultPath: StatusSocket.defaultPath(for: "firezone-gateway"))
        let status = StatusSocket.printStatus(from: path, json: arguments.json, tool: "firezone-gateway")
        guard status == 0 else { throw ExitCode(status) }
    }
}
