import ArgumentParser
import PcapFile
import Replay

/// `firezone-pcap-replay dissect CAPTURE`: the underlay's UDP datagrams through the project's de-multiplexer.
struct DissectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dissect",
        abstract: "Classifies every UDP datagram of an underlay capture: STUN, TURN ChannelData, WireGuard, other.",
        discussion: """
            Prints one line per datagram and a summary: STUN by method and class, ChannelData by channel, \
            WireGuard by message type, the peers (UDP endpoint pairs), the relays and the WireGuard sessions. \
            Malformed messages are listed, never fatal. Exits 0 when the capture was read to its end, 1 when it \
            could not be (after reporting everything before the damage), 64 on bad usage.
            """
    )

    @Argument(help: "A pcap or pcapng file (Ethernet, raw IP, Linux cooked v1/v2 or BSD loopback).")
    var capture: String

    @Flag(name: .shortAndLong, help: "Print only the summary (with --json: leave out the per-datagram list).")
    var quiet = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let reader: PcapReader
        do {
            reader = try PcapReader(path: capture)
        } catch {
            printError("cannot open capture: \(error)")
            throw ExitCode.failure
        }
        var dissector = UnderlayDissector(keepDatagrams: json && !quiet)
        var progress = ProgressBar(total: reader.fileSize)
        do {
            while let record = try reader.next() {
                let datagram = dissector.add(record, linkType: reader.linkType)
                if !quiet, !json, let datagram {
                    print("#\(datagram.packet) \(datagram.source) → \(datagram.destination) \(datagram.summary)")
                }
                if record.number % 4096 == 0 { progress.update(done: reader.bytesRead) }
            }
        } catch {
            var report = dissector.report
            report.error = "\(error)"
            progress.finish()
            print(json ? try jsonText(report) : report.text)
            printError("capture ended early: \(error)")
            throw ExitCode.failure
        }
        progress.finish()
        print(json ? try jsonText(dissector.report) : dissector.report.text)
    }
}
