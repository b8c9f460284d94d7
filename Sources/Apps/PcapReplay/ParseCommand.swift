import ArgumentParser
import IpPacket
import PcapFile

/// `firezone-pcap-replay parse FILE`: every IP packet of a capture through the strict `IpPacket` parser.
struct ParseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Parses every packet of a capture with the strict IP packet parser.",
        discussion: """
            Prints one line per frame (the parsed packet, or the rule it broke) and a summary of \
            packets and bytes per protocol and rejections per reason. Exits 0 when the capture was read \
            completely (rejected packets are results, not failures), 1 when it could not be read, and 2 \
            with --strict when any packet was rejected.
            """
    )

    @Argument(help: "A pcap or pcapng file (Ethernet, raw IP, Linux cooked or loopback link types).")
    var capture: String

    @Flag(name: .shortAndLong, help: "Print only the summary.")
    var quiet = false

    @Flag(help: "Exit with status 2 if any IP packet was rejected.")
    var strict = false

    func run() throws {
        let reader: PcapReader
        do {
            reader = try PcapReader(path: capture)
        } catch {
            printError("cannot open capture: \(error)")
            throw ExitCode.failure
        }
        var summary = ParseSummary()
        do {
            while let record = try reader.next() {
                if let line = summary.add(record, describe: !quiet) { print(line) }
            }
        } catch {
            printError("capture ended early: \(error)")
            print(summary.report(linkType: reader.linkType))
            throw ExitCode.failure
        }
        print(summary.report(linkType: reader.linkType))
        if strict, summary.rejectedPackets > 0 { throw ExitCode(2) }
    }
}
