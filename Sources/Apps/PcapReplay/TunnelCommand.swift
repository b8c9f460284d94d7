#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FoundationEssentials
import Replay

/// `firezone-pcap-replay [tunnel] CAPTURE`: a client's captured IP traffic through a real client and gateway.
struct TunnelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunnel",
        abstract: "Replays a client's captured IP traffic through a client and a gateway in one process.",
        discussion: """
            Packets from the client's tunnel address (the first source address in 100.64.0.0/11 or \
            fd00:2021:1111::/107) enter the client's TUN device; packets to it are the resources' replies and \
            enter the gateway's TUN device. The resources file (the development portal's YAML) says what the \
            client may reach; without one, everything goes through the Internet resource. Writes wire.pcap, \
            gateway-egress.pcap and client-tun.pcap to the output directory. Exits 0 when the capture was \
            replayed to its end, 1 when it or the resources file could not be read (after reporting what was \
            replayed), 64 on bad usage.
            """
    )

    @Argument(help: "A pcap or pcapng file (Ethernet, raw IP, Linux cooked v1/v2 or BSD loopback).")
    var capture: String

    @Option(name: .shortAndLong, help: "The development portal's YAML with the resources and policies.")
    var resources: String?

    @Option(help: "Whose policies apply (default: the first actor in the resources file).")
    var actor: String?

    @Option(name: .shortAndLong, help: "Directory for the output pcaps (created if missing).")
    var output: String = "replay-output"

    @Flag(help: "Write no pcaps.")
    var noPcaps = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Seconds the replay runs on after the last packet, so what is in flight arrives.")
    var drain: Int = 5

    @Option(help: "Pauses in the capture longer than this many seconds are shortened to it.")
    var longestPause: Int = 3600

    @Option(help: ArgumentHelp(
        "Where a flow goes when its destination is both a DNS resource's captured answer and inside a CIDR resource, and its HTTP Host or TLS server name does not say.",
        valueName: "cidr|dns"))
    var prefer: ResourcePreference = .cidr

    @Option(help: ArgumentHelp("Write a self-contained HTML page with a timeline per connection (SVG) to this file.", valueName: "file"))
    var html: String?

    func validate() throws {
        guard drain >= 0, drain <= 3600 else { throw ValidationError("--drain must be between 0 and 3600 seconds") }
        guard longestPause >= 1, longestPause <= 604_800 else {
            throw ValidationError("--longest-pause must be between 1 and 604800 seconds (a week)")
        }
        if actor != nil, resources == nil { throw ValidationError("--actor needs --resources") }
    }

    func run() throws {
        let scenario: ReplayScenario
        do {
            scenario = try resources.map { path in try ReplayScenario(yaml: try readText(path), actor: actor) } ?? .internet
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        var options = TunnelReplay.Options(scenario: scenario, outputDirectory: noPcaps ? nil : output)
        options.drain = .seconds(drain)
        options.longestPause = .seconds(longestPause)
        options.prefer = prefer
        options.drawsTimeline = html != nil
        let report: TunnelReport
        do {
            let replay = try TunnelReplay(path: capture, options: options)
            var progress = ProgressBar(total: replay.fileSize)
            report = try replay.run { progress.update(done: $0.bytesRead) }
            progress.finish()
            if let html, let timeline = replay.timeline(title: "firezone-pcap-replay tunnel \(capture)") {
                try timeline.html().write(toFile: html, atomically: true, encoding: .utf8)
            }
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        print(json ? try jsonText(report) : report.text)
        if let error = report.error {
            printError("capture ended early: \(error)")
            throw ExitCode.failure
        }
    }
}

func readText(_ path: String) throws -> String {
    do {
        return try String(contentsOf: URL(fileURLWithPath: path), encoding: .utf8)
    } catch {
        throw ReplayInputError("cannot read \(path): \(error.localizedDescription)")
    }
}

func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

extension ResourcePreference: ExpressibleByArgument {}
