#if canImport(Glibc)
import Glibc
#endif
import IpPacket
import PcapFile

/// Tallies of a `parse` run: what parsed, per protocol, and what was rejected, per reason.
struct ParseSummary {
    private(set) var frames = 0
    private(set) var nonIpFrames = 0
    private(set) var truncatedFrames = 0
    private(set) var parsedPackets = 0
    private(set) var rejectedPackets = 0
    private var packetsByProtocol: [String: (packets: Int, bytes: Int)] = [:]
    private var rejectionsByReason: [String: Int] = [:]

    /// Parses one record's IP packet and, when `describe` is set, returns the line that describes it.
    mutating func add(_ record: PcapRecord, describe: Bool = true) -> String? {
        frames += 1
        let prefix = describe ? "#\(record.number)" : ""
        guard let ip = LinkLayer.ipPacket(in: record.data, linkType: record.linkType) else {
            nonIpFrames += 1
            return describe ? "\(prefix) skipped: no IP packet in this \(record.linkType) frame" : nil
        }
        if record.isTruncated { truncatedFrames += 1 }
        do {
            let packet = try IpPacket(copying: ip)
            parsedPackets += 1
            let key = "\(packet.version) \(IpProtocolName.name(of: packet.nextHeader))"
            packetsByProtocol[key, default: (0, 0)].packets += 1
            packetsByProtocol[key, default: (0, 0)].bytes += packet.count
            defer { PacketBufferPool.shared.recycle(packet) }
            return describe ? "\(prefix) \(packet)" : nil
        } catch {
            rejectedPackets += 1
            rejectionsByReason[error.reason.identifier, default: 0] += 1
            let truncation = record.isTruncated ? " (frame truncated by the capture's snap length)" : ""
            return describe ? "\(prefix) rejected: \(error)\(truncation)" : nil
        }
    }

    func report(linkType: LinkType) -> String {
        var lines = ["", "Summary (\(linkType) capture):",
                     "  frames: \(frames), IP packets parsed: \(parsedPackets), rejected: \(rejectedPackets), " +
                     "frames without IP: \(nonIpFrames)"]
        if truncatedFrames > 0 { lines.append("  frames truncated by the snap length: \(truncatedFrames)") }
        for (key, tally) in packetsByProtocol.sorted(by: { $0.key < $1.key }) {
            lines.append("  parsed \(key): \(tally.packets) packets, \(tally.bytes) bytes")
        }
        for (reason, count) in rejectionsByReason.sorted(by: { $0.key < $1.key }) {
            lines.append("  rejected \(reason): \(count)")
        }
        return lines.joined(separator: "\n")
    }
}

func printError(_ message: String) {
    var standardError = StandardError()
    print("firezone-pcap-replay: \(message)", to: &standardError)
}

private struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var text = string
        text.withUTF8 { bytes in _ = Glibc.write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }
}
