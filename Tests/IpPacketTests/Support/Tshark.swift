import Foundation
import Testing

/// Runs Wireshark's command-line dissector, an implementation independent of ours, on a capture.
enum Tshark {
    /// Options that make tshark verify every checksum it can.
    static let checksumValidation = [
        "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
    ]

    /// One row per frame, `fields` in order; each value is every occurrence joined by ",".
    static func fields(_ fields: [String], of capture: String, options: [String] = []) throws -> [[String: String]] {
        var arguments = ["-r", capture, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
        arguments += options
        for field in fields { arguments += ["-e", field] }
        let output = try run(arguments)
        return output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { line in
            let values = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(fields, values + Array(repeating: "", count: max(0, fields.count - values.count))))
        }
    }

    static func run(_ arguments: [String]) throws -> String {
        let executable = try #require(
            ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "tshark is missing: run scripts/bootstrap")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "tshark \(arguments.joined(separator: " ")) failed: \(errorText)")
        return String(decoding: data, as: UTF8.self)
    }
}

enum Fixtures {
    static var directory: String {
        let testFile = "\(#filePath)"
        let repository = testFile.split(separator: "/").dropLast(4).joined(separator: "/")
        return "/" + repository + "/Fixtures"
    }

    static let kernelTraffic = directory + "/captures/kernel-traffic.pcap"

    /// A fresh path in the temporary directory for a capture a test writes.
    static func temporaryCapture(_ name: String) -> String {
        NSTemporaryDirectory() + "swift-firezone-\(name)-\(UUID().uuidString).pcap"
    }
}

func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace }.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { index in
        UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) ?? 0
    }
}

/// Parses tshark's decimal or 0x-prefixed hexadecimal numbers.
func number(_ text: String) -> UInt64? {
    if text.hasPrefix("0x") { return UInt64(text.dropFirst(2), radix: 16) }
    return UInt64(text)
}

import IpPacket

extension IpPacket {
    /// The context the library attaches to errors about this packet after a successful parse.
    var errorContextForTest: IpPacketError.Context {
        IpPacketError.Context(version: version, source: source, destination: destination, nextHeader: nextHeader)
    }
}
