import Foundation
import Replay
import TestSupport
import Testing

/// Paths, the tool's binary and tshark checks the replay tests share.
enum ReplayFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    static let capture = root + "/Fixtures/captures/replay-demo.pcap"
    static let resources = root + "/Fixtures/captures/replay-demo.yaml"

    static var scenario: ReplayScenario {
        get throws { try ReplayScenario(yaml: String(contentsOfFile: resources, encoding: .utf8)) }
    }

    static func replay(_ path: String, output: String? = nil) throws -> TunnelReport {
        try TunnelReplay(path: path, options: .init(scenario: scenario, outputDirectory: output)).run()
    }

    static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "fz-replay-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The `firezone-pcap-replay` binary built next to the tests.
    static var tool: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("firezone-pcap-replay").path,
            root + "/.build/debug/firezone-pcap-replay",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    /// Runs blocking work (a child process) on a thread of its own: a test that waits for a process on the
    /// concurrency pool starves the async tests running beside it (2 cores, 2 pool threads).
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    /// Runs the tool; returns its exit status, standard output and standard error.
    static func runTool(_ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
        try await offPool { try runToolBlocking(arguments) }
    }

    private static func runToolBlocking(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }

    /// Frames tshark flags with checksum validation on: malformed, bad checksums, expert warnings or worse.
    static func tsharkComplaints(_ capture: String) async throws -> [String] {
        let filter = "_ws.malformed || _ws.expert.severity >= warning || ip.checksum.status == 0 || udp.checksum.status == 0"
            + " || tcp.checksum.status == 0 || icmp.checksum.status == 0 || icmpv6.checksum.status == 0"
        return try await offPool { try Tshark.run(["-r", capture] + Tshark.checksumValidation + ["-Y", filter]) }
            .split(separator: "\n").map(String.init)
    }

    /// Runs one of the recording scripts. Foundation starts children with every signal blocked, which the
    /// scripts' `kill` of their tcpdump and peers would never get through; python3 clears the mask first.
    static func record(_ script: String, _ arguments: [String], environment: [String: String] = [:]) async throws {
        let unblock = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv(sys.argv[1], sys.argv[1:])"
        let settings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        try await shell(["python3", "-c", unblock, "/usr/bin/env"] + settings + [root + "/scripts/fixtures/" + script] + arguments)
    }

    static func shell(_ arguments: [String]) async throws {
        _ = try await offPool { try Shell.run(arguments) }
    }

    static func tsharkFields(_ fields: [String], of capture: String, filter: String? = nil) async throws -> [[String: String]] {
        try await offPool { try Tshark.fields(fields, of: capture, filter: filter) }
    }

    static func requireRoot() {
        #expect(geteuid() == 0, "recording captures needs root (network namespaces); run the tests as root as CI does")
    }
}
