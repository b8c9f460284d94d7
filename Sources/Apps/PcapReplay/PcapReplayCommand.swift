import ArgumentParser

@main
struct PcapReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firezone-pcap-replay",
        abstract: "Runs captured traffic through the toolkit's packet pipeline.",
        subcommands: [TunnelCommand.self, DissectCommand.self, ParseCommand.self],
        defaultSubcommand: TunnelCommand.self
    )
}
