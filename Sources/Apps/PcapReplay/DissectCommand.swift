import ArgumentParser
import FoundationEssentials
import Noise
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

    @Argument(help: "A pcap or pcapng file (Ethernet with VLAN tags, raw IP, Linux cooked v1/v2 or BSD loopback; pcapng may mix them).")
    var capture: String

    @Flag(name: .shortAndLong, help: "Print only the summary (with --json: leave out the per-datagram list).")
    var quiet = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: ArgumentHelp(
        "A WireGuard key log (what firezone-client and firezone-gateway write when WGKEYLOGFILE names a file, or wireguard-tools' extract-handshakes.sh prints): decrypts the data of every session whose handshake is in the capture.",
        valueName: "file"))
    var keylog: String?

    @Option(name: .customLong("write-wireguard"), help: ArgumentHelp(
        "Write every WireGuard message found, unwrapped from ChannelData and split out of GSO-coalesced datagrams, as a UDP datagram of its own to this raw-IP pcap (for tshark, which does neither).",
        valueName: "file"))
    var writeWireGuard: String?

    @Option(help: ArgumentHelp("Write a self-contained HTML page with a timeline per connection (SVG) to this file.", valueName: "file"))
    var html: String?

    func run() throws {
        let reader: PcapReader
        do {
            reader = try PcapReader(path: capture)
        } catch {
            printError("cannot open capture: \(error)")
            throw ExitCode.failure
        }
        var secrets: [WireGuardSessionSecrets]?
        if let keylog {
            do {
                secrets = try WireGuardKeyLog.parse(String(contentsOfFile: keylog, encoding: .utf8))
            } catch {
                printError("cannot read the key log \(keylog): \(error)")
                throw ExitCode.failure
            }
        }
        var dissector = UnderlayDissector(keepDatagrams: json && !quiet, keyLog: secrets, drawsTimeline: html != nil)
        if let writeWireGuard {
            do {
                dissector.export = try WireGuardExport(path: writeWireGuard)
            } catch {
                printError("cannot write \(writeWireGuard): \(error)")
                throw ExitCode.failure
            }
        }
        defer { dissector.export?.close() }
        var progress = ProgressBar(total: reader.fileSize)
        do {
            while let record = try reader.next() {
                for datagram in dissector.add(record) where !quiet && !json {
                    let inner = datagram.decrypted.map { " ⟨\($0.accepted ? "\($0.summary) \($0.source) → \($0.destination)" : "refused: \($0.summary)")⟩" } ?? ""
                    let segment = datagram.coalesced.map { " [GSO segment \($0)]" } ?? ""
                    print("#\(datagram.packet) \(datagram.source) → \(datagram.destination) \(datagram.summary)\(segment)\(inner)")
                }
                if record.number % 4096 == 0 { progress.update(done: reader.bytesRead) }
            }
        } catch {
            dissector.finish()
            var report = dissector.report
            report.error = "\(error)"
            progress.finish()
            print(json ? try jsonText(report) : report.text)
            printError("capture ended early: \(error)")
            throw ExitCode.failure
        }
        progress.finish()
        dissector.finish()
        try writeHtml(dissector.timeline(title: "firezone-pcap-replay dissect \(capture)"))
        print(json ? try jsonText(dissector.report) : dissector.report.text)
    }

    private func writeHtml(_ timeline: Timeline?) throws {
        guard let html, let timeline else { return }
        do {
            try timeline.html().write(toFile: html, atomically: true, encoding: .utf8)
        } catch {
            printError("cannot write \(html): \(error)")
            throw ExitCode.failure
        }
    }
}
