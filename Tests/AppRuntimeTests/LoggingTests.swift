import AppRuntime
import Foundation
import Logging
import Testing
import TestSupport

@Suite("AppRuntime: log formats and RUST_LOG-style filters (spec portal-phoenix.md §7.3)", .offPool)
struct LoggingTests {
    /// 2025-11-30T14:17:24.123456Z, the instant of the spec's examples.
    static let seconds: Int64 = 1_764_512_244
    static let nanoseconds: Int32 = 123_456_789

    @Test("the human format is the spec's example line")
    func humanFormat() {
        let line = LogLine(secondsSinceEpoch: Self.seconds, nanoseconds: Self.nanoseconds, level: .info, target: "firezone_gateway",
                           message: "Goodbye!")
        #expect(line.human() == "2025-11-30T14:17:24.123Z  INFO firezone_gateway: Goodbye!")
        var warning = line
        warning.level = .warning
        warning.fields = [("backoff", "1.2s")]
        #expect(warning.human() == "2025-11-30T14:17:24.123Z  WARN firezone_gateway: Goodbye! backoff=1.2s")
        #expect(warning.human(colour: true) == "2025-11-30T14:17:24.123Z \u{1B}[33m WARN\u{1B}[0m firezone_gateway: Goodbye! backoff=1.2s")
    }

    @Test("the JSON format is the spec's example object, key for key")
    func jsonFormat() {
        let line = LogLine(secondsSinceEpoch: Self.seconds, nanoseconds: Self.nanoseconds, level: .info, target: "firezone_gateway::eventloop",
                           message: "Hiccup in portal connection: websocket connection failed",
                           fields: [("backoff", "1.2s"), ("max_elapsed_time", "Some(900s)")])
        #expect(line.json() == #"{"timestamp":"2025-11-30T14:17:24.123456Z","level":"INFO","message":"Hiccup in portal connection: websocket connection failed","backoff":"1.2s","max_elapsed_time":"Some(900s)","target":"firezone_gateway::eventloop"}"#)
    }

    /// Python's json module reads every line back to the same text, whatever characters the message holds.
    @Test("JSON lines with quotes, backslashes, control characters and non-ASCII parse in Python to the same text")
    func jsonEscapingAgreesWithPython() async throws {
        let messages = ["plain", "quote \" and backslash \\", "tab\tnewline\nreturn\r", "bell \u{7} escape \u{1B}", "ümlaut ✓ 🚀", ""]
        let lines = messages.map {
            LogLine(secondsSinceEpoch: 0, nanoseconds: 0, level: .error, target: "t", message: $0, fields: [("key \"x\"", $0)]).json()
        }
        let (status, echoed) = try await offPool { () throws -> (Int32, String) in
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            python.arguments = ["python3", "-c", """
                import json, sys
                for line in sys.stdin:
                    value = json.loads(line)
                    assert list(value) == ["timestamp", "level", "message", 'key "x"', "target"], list(value)
                    assert value["message"] == value['key "x"']
                    print(json.dumps(value["message"]))
                """]
            let input = Pipe(), output = Pipe()
            python.standardInput = input
            python.standardOutput = output
            try python.run()
            input.fileHandleForWriting.write(Data(lines.joined(separator: "\n").utf8 + [0x0A]))
            try input.fileHandleForWriting.close()
            let echoed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            python.waitUntilExit()
            return (python.terminationStatus, echoed)
        }
        #expect(status == 0)
        let decoded = try echoed.split(separator: "\n").map { try JSONDecoder().decode(String.self, from: Data($0.utf8)) }
        #expect(decoded == messages)
    }

    @Test("filters: a default level, targets with their children, the most specific wins, off, and typos reported")
    func filters() {
        let filter = LogFilter("warn, firezone_tunnel=debug,snownet::ice=trace,snownet=error,phoenix_channel=off,bogus=loud,=info")
        #expect(filter.level(for: "firezone_gateway") == .warning)
        #expect(filter.level(for: "firezone_tunnel") == .debug)
        #expect(filter.level(for: "firezone_tunnel::dns") == .debug)
        #expect(filter.level(for: "firezone_tunnelx") == .warning, "a child is separated by ::")
        #expect(filter.level(for: "snownet::ice::agent") == .trace)
        #expect(filter.level(for: "snownet::turn") == .error)
        #expect(filter.level(for: "phoenix_channel") == nil)
        #expect(filter.problems.count == 2, "\(filter.problems)")
        #expect(LogFilter().level(for: "anything") == .info)
        #expect(LogFilter("debug,flow_logs=trace").flowLogsEnabled && !LogFilter("trace").flowLogsEnabled)
    }

    @Test("the handler writes what the filter lets through, with the logger's and the call's metadata")
    func handlerThroughAPipe() throws {
        let pipe = Pipe()
        let sink = LogSink(fileDescriptor: pipe.fileHandleForWriting.fileDescriptor)
        let filter = LogFilter("info,quiet=off,chatty=debug")
        let clock: @Sendable () -> (seconds: Int64, nanoseconds: Int32) = { (Self.seconds, Self.nanoseconds) }
        func logger(_ label: String, _ format: LogFormat) -> Logger {
            Logger(label: label) { FirezoneLogHandler(label: $0, filter: filter, format: format, sink: sink, now: clock) }
        }
        var gateway = logger("firezone_gateway", .human)
        gateway[metadataKey: "client"] = "c1"
        gateway.debug("hidden")
        gateway.info("Connected to portal", metadata: ["host": "portal.test"])
        logger("quiet", .human).error("never")
        logger("chatty", .json).debug("shown", metadata: ["n": "1"])
        try pipe.fileHandleForWriting.close()
        let written = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(written == """
            2025-11-30T14:17:24.123Z  INFO firezone_gateway: Connected to portal client=c1 host=portal.test
            {"timestamp":"2025-11-30T14:17:24.123456Z","level":"DEBUG","message":"shown","n":"1","target":"chatty"}

            """)
    }

    @Test("--log-dir: a timestamped file with mode 0640 and a `latest` link, the same lines as standard output")
    func logDirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fz-logs-\(UUID().uuidString)/nested").path
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        #expect(throws: SystemCallError.self) { try LogSink.file(in: "/proc/no/such/dir", prefix: "x", secondsSinceEpoch: Self.seconds) }
        try FileManager.default.createDirectory(atPath: (directory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let file = try LogSink.file(in: directory, prefix: "firezone-headless-client", secondsSinceEpoch: Self.seconds)
        let pipe = Pipe()
        let standardOutput = LogSink(fileDescriptor: pipe.fileHandleForWriting.fileDescriptor)
        let clock: @Sendable () -> (seconds: Int64, nanoseconds: Int32) = { (Self.seconds, Self.nanoseconds) }
        Logger(label: "firezone_headless_client") {
            FirezoneLogHandler(label: $0, filter: LogFilter(), format: .human, sink: standardOutput, also: [file], now: clock)
        }.info("Tunnel ready")
        try pipe.fileHandleForWriting.close()
        let expected = "2025-11-30T14:17:24.123Z  INFO firezone_headless_client: Tunnel ready\n"
        let path = directory + "/firezone-headless-client.2025-11-30-14-17-24.log"
        #expect(try String(contentsOfFile: path, encoding: .utf8) == expected)
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == expected)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/latest") == "firezone-headless-client.2025-11-30-14-17-24.log")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
    }
}
