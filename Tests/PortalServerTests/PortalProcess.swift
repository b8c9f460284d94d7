import Foundation
import Glibc
import TestSupport

/// A built tool of this package (`firezone-portal`, `firezone-relay`) as a child process whose standard output
/// the test reads line by line.
final class ToolProcess {
    let name: String
    private var process: Process?
    private var lines: LineReader?

    init(_ name: String) {
        self.name = name
    }

    static func executable(_ name: String) throws -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/\(name)").path,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw PortalProcessError("\(name) is not built (swift build --build-tests builds it)")
        }
        return found
    }

    func start(_ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        // Foundation's Process starts children with every signal blocked; exec through Python to start the tool
        // with the empty mask a shell or systemd gives it, so SIGHUP and SIGTERM reach it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv(sys.argv[1], sys.argv[1:])",
                             try Self.executable(name)] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        self.process = process
        lines = LineReader(output.fileHandleForReading)
    }

    func waitForLine(containing text: String, timeout: Double = 30) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [String] = []
        while Date() < deadline {
            guard let line = await lines?.nextLine(within: .milliseconds(Int(deadline.timeIntervalSinceNow * 1000))) else { break }
            if line.contains(text) { return line }
            seen.append(line)
        }
        throw PortalProcessError("\(name) did not print '\(text)' within \(timeout) s; it printed: \(seen.suffix(5))")
    }

    func signal(_ number: Int32) {
        guard let process else { return }
        kill(process.processIdentifier, number)
    }

    /// SIGTERM, then the exit status.
    func stop() -> Int32 {
        guard let process else { return -1 }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
        return process.terminationStatus
    }
}

/// The built `firezone-portal` binary as a child process, with its own config file and database in a
/// temporary directory; ``port`` is where it listens (it picks a free one).
final class PortalProcess {
    let directory: URL
    let configPath: String
    let databasePath: String
    private(set) var port = 0
    private let tool = ToolProcess("firezone-portal")

    init(config: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("portal-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        configPath = directory.appendingPathComponent("portal.yaml").path
        databasePath = directory.appendingPathComponent("portal.sqlite").path
        try writeConfig(config)
    }

    static var executable: String {
        get throws { try ToolProcess.executable("firezone-portal") }
    }

    func writeConfig(_ text: String) throws {
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Starts the portal and waits for its "listening on" line.
    func start() async throws {
        try tool.start(["--config", configPath, "--listen", "127.0.0.1:0", "--database", databasePath])
        let line = try await waitForLine(containing: "listening on 127.0.0.1:")
        guard let port = Int(line.split(separator: ":").last ?? "") else { throw PortalProcessError("no port in '\(line)'") }
        self.port = port
    }

    func waitForLine(containing text: String, timeout: Double = 30) async throws -> String {
        try await tool.waitForLine(containing: text, timeout: timeout)
    }

    func signal(_ number: Int32) {
        tool.signal(number)
    }

    /// SIGTERM, then the exit status.
    func stop() -> Int32 {
        tool.stop()
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }
}

struct PortalProcessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
