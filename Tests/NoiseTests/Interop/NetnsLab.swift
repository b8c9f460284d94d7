import Foundation
import Testing

/// Two network namespaces joined by a veth pair, and the processes a test starts in them. Everything is
/// removed again by `tearDown()`; processes are stopped by their PIDs only.
final class NetnsLab {
    let name: String
    let namespaceA: String
    let namespaceB: String
    let directory: URL
    private var processes: [Process] = []

    /// `name` keeps namespaces and interfaces of concurrent labs apart (at most 6 characters).
    init(name: String) throws {
        try #require(getuid() == 0, "the interop tests create network namespaces and need root")
        self.name = name
        namespaceA = "fz\(name)-a"
        namespaceB = "fz\(name)-b"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fz-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("stderr.log").path, contents: nil)
        removeNamespaces()
        try run("ip", "netns", "add", namespaceA)
        try run("ip", "netns", "add", namespaceB)
        try run("ip", "link", "add", "fz\(name)ab", "type", "veth", "peer", "name", "fz\(name)ba")
        try run("ip", "link", "set", "fz\(name)ab", "netns", namespaceA)
        try run("ip", "link", "set", "fz\(name)ba", "netns", namespaceB)
        try run("ip", "-n", namespaceA, "addr", "add", "10.98.0.1/24", "dev", "fz\(name)ab")
        try run("ip", "-n", namespaceB, "addr", "add", "10.98.0.2/24", "dev", "fz\(name)ba")
        for (namespace, link) in [(namespaceA, "fz\(name)ab"), (namespaceB, "fz\(name)ba")] {
            try run("ip", "-n", namespace, "link", "set", "lo", "up")
            try run("ip", "-n", namespace, "link", "set", link, "up")
        }
    }

    /// The veth interface in namespace B (where our peer runs), for captures.
    var interfaceB: String { "fz\(name)ba" }

    func tearDown() {
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGTERM)
        }
        for process in processes {
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        removeNamespaces()
        try? FileManager.default.removeItem(at: directory)
    }

    private func removeNamespaces() {
        _ = try? run("ip", "netns", "del", namespaceA, allowFailure: true)
        _ = try? run("ip", "netns", "del", namespaceB, allowFailure: true)
    }

    /// Runs a command to completion; throws (with its output) when it fails, unless `allowFailure`.
    @discardableResult
    func run(_ arguments: String..., allowFailure: Bool = false, input: String? = nil) throws -> (status: Int32, output: String) {
        try run(arguments, allowFailure: allowFailure)
    }

    @discardableResult
    func run(_ arguments: [String], allowFailure: Bool = false) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        let errors = FileHandle(forWritingAtPath: path("stderr.log")) ?? FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = errors
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        if !allowFailure, process.terminationStatus != 0 {
            throw LabError.commandFailed(arguments.joined(separator: " "), output + log("stderr.log"))
        }
        return (process.terminationStatus, output)
    }

    /// Starts a long-running command whose output goes to `log`; it is stopped by `tearDown()`.
    @discardableResult
    func start(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let file = directory.appendingPathComponent(log)
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes.append(process)
        return process
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func write(_ text: String, to name: String) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        chmod(path(name), 0o600)
    }

    /// Waits until `condition` holds, checking every 20 ms, for at most `seconds`. On time-out the error
    /// carries every log of the lab.
    func waitUntil(_ what: String, seconds: Double = 10, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            usleep(20_000)
        }
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".log") }.sorted()
            .map { "--- \($0)\n\(log($0))" }.joined(separator: "\n")
        throw LabError.timedOut("\(what)\n\(logs)")
    }
}

enum LabError: Error, CustomStringConvertible {
    case commandFailed(String, String)
    case timedOut(String)

    var description: String {
        switch self {
        case let .commandFailed(command, output): "\(command) failed: \(output)"
        case let .timedOut(what): "timed out waiting for \(what)"
        }
    }
}
