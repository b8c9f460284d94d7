import Foundation

/// Runs Wireshark's command-line dissector, an implementation independent of ours, on a capture.
public enum Tshark {
    /// Options that make tshark verify every checksum it can.
    public static let checksumValidation = [
        "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
    ]

    /// One row per frame (matching `filter`, if given): each field's every occurrence joined by ",".
    public static func fields(_ fields: [String], of capture: String, filter: String? = nil,
                              options: [String] = []) throws -> [[String: String]] {
        var arguments = ["-r", capture, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
        if let filter { arguments += ["-Y", filter] }
        arguments += options
        for field in fields { arguments += ["-e", field] }
        let output = try run(arguments)
        return output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { line in
            let values = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(fields, values + Array(repeating: "", count: max(0, fields.count - values.count))))
        }
    }

    public static func run(_ arguments: [String]) throws -> String {
        guard let executable = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw TsharkError.missing }
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
        guard process.terminationStatus == 0 else {
            throw TsharkError.failed(arguments.joined(separator: " "), errorText)
        }
        return String(decoding: data, as: UTF8.self)
    }
}

public enum TsharkError: Error, CustomStringConvertible {
    case missing
    case failed(String, String)

    public var description: String {
        switch self {
        case .missing: "tshark is missing: run scripts/bootstrap"
        case let .failed(command, errors): "tshark \(command) failed: \(errors)"
        }
    }
}
