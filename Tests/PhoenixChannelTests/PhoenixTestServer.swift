import Foundation
import Glibc
import TestSupport

/// `Tests/Support/phoenix_server.py` as a child process: starts it with a behaviour script, reads its reports.
final class PhoenixTestServer {
    struct Request: Decodable {
        var path: String
        var headers: [[String]]

        func header(_ name: String) -> [String] {
            headers.filter { $0.first?.lowercased() == name.lowercased() }.compactMap { $0.last }
        }
    }

    private struct Report: Decodable {
        var listening: Int?
        var request: Request?
        var frame: String?
        var disconnected: Int?
        var close_received: Int?
    }

    enum Seen {
        case request(Request)
        case frame(String)
        case closeReceived(code: Int)
        case disconnected
    }

    let port: Int
    private let process = Process()
    private let lines: LineReader

    init(_ behaviours: String, tls: (certificate: String, key: String)? = nil) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/phoenix_server.py").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", script] + (tls.map { ["--tls", $0.certificate, $0.key] } ?? []) + [behaviours]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        lines = LineReader(output.fileHandleForReading)
        guard let first = lines.next(timeout: 20),
              let port = try JSONDecoder().decode(Report.self, from: Data(first.utf8)).listening
        else {
            kill(process.processIdentifier, SIGKILL)
            throw ServerError.didNotStart
        }
        self.port = port
    }

    /// The next report, waiting up to `timeout` seconds.
    func next(timeout: Double = 20) async throws -> Seen {
        guard let line = await lines.nextLine(within: .milliseconds(Int(timeout * 1000))) else { throw ServerError.silent(timeout) }
        let report = try JSONDecoder().decode(Report.self, from: Data(line.utf8))
        if let request = report.request { return .request(request) }
        if let frame = report.frame { return .frame(frame) }
        if let code = report.close_received { return .closeReceived(code: code) }
        return .disconnected
    }

    /// Reports until one matches.
    func waitFor<T>(timeout: Double = 20, _ match: (Seen) -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let found = match(try await next(timeout: deadline.timeIntervalSinceNow)) { return found }
        }
        throw ServerError.silent(timeout)
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    enum ServerError: Error {
        case didNotStart
        case silent(Double)
    }
}
