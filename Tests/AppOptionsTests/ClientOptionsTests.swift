import AppOptions
import AppRuntime
import Foundation
import TestSupport
import Testing

@Suite("firezone-client: flags, environment variables, the token file and the device ID (spec portal-phoenix.md §7.2, §1.1)", .offPool)
struct ClientOptionsTests {
    func resolve(_ arguments: [String], _ environment: [String: String] = [:]) throws -> ClientConfiguration {
        try ClientConfiguration.resolve(ClientArguments.parse(arguments), environment: environment, hostname: "laptop")
    }

    @Test("defaults and variables; `standalone` is accepted and ignored, anything else is not")
    func flagsAndVariables() throws {
        let defaults = try resolve([])
        #expect(defaults == ClientConfiguration(name: "laptop"))
        #expect(defaults.dnsControl == .systemdResolved && defaults.tokenPath == "/etc/dev.firezone.client/token" && !defaults.raiseSocketBuffers)
        #expect(try resolve(["standalone"]) == defaults)
        #expect(throws: (any Error).self) { try ClientArguments.parse(["sideways"]) }
        let configured = try resolve(["--dns-control", "etc-resolv-conf", "--exit", "-m", "1h 30m"], [
            "FIREZONE_DNS_CONTROL": "disabled", "LOG_DIR": "/var/log/fz", "FIREZONE_ACTIVATE_INTERNET_RESOURCE": "true",
            "FIREZONE_TOKEN_PATH": "/tmp/token", "FIREZONE_INC_BUF": "true",
        ])
        #expect(configured.dnsControl == .etcResolvConf && configured.exitWhenReady && configured.maxPartitionTime == .seconds(5400))
        #expect(configured.logDirectory == "/var/log/fz" && configured.activateInternetResource && configured.tokenPath == "/tmp/token")
        #expect(configured.raiseSocketBuffers)
        #expect(throws: OptionError.invalidValue(name: "--dns-control", value: "nrpt", expected: "disabled, etc-resolv-conf, systemd-resolved")) {
            try resolve(["--dns-control", "nrpt"])
        }
    }

    @Test("humantime durations", arguments: [("5m", 300), ("1h", 3600), ("30d", 2_592_000), ("2h 5s", 7205), ("90sec", 90)])
    func durations(_ text: String, _ seconds: Int64) {
        #expect(HumanDuration.parse(text) == .seconds(seconds))
    }

    @Test("durations that are not", arguments: ["", "5", "m", "5 parsecs", "-1h"])
    func badDurations(_ text: String) {
        #expect(HumanDuration.parse(text) == nil)
    }

    @Test("FIREZONE_TOKEN leaves the process environment when taken")
    func tokenLeavesEnvironment() {
        setenv("FIREZONE_TOKEN", "env-token", 1)
        #expect(ClientToken.takeFromEnvironment() == "env-token")
        #expect(getenv("FIREZONE_TOKEN") == nil)
        #expect(ClientToken.takeFromEnvironment() == nil)
    }

    @Test("the token file must be root's with mode 0400 or 0600; it is trimmed; the environment comes first")
    func tokenFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fz-token-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/token"
        #expect(throws: OptionError.clientTokenMissing(path: path)) { try ClientToken.read(environmentToken: nil, path: path) }
        #expect("\(OptionError.clientTokenMissing(path: path))" == "Can't find the Firezone token in $FIREZONE_TOKEN or in `\(path)`")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(" file-token \n".utf8), attributes: [.posixPermissions: 0o600]))
        #expect(try ClientToken.read(environmentToken: nil, path: path) == "file-token")
        #expect(try ClientToken.read(environmentToken: "env", path: path) == "env")
        chmod(path, 0o640)
        #expect(throws: OptionError.tokenFileRefused("Token file `\(path)` should have mode 0o400 or 0x600")) {
            try ClientToken.read(environmentToken: nil, path: path)
        }
        chmod(path, 0o400)
        chown(path, 1000, 0)
        #expect(throws: OptionError.tokenFileRefused("Token file `\(path)` should be owned by root user")) {
            try ClientToken.read(environmentToken: nil, path: path)
        }
        chown(path, 0, 1000)
        #expect(throws: OptionError.tokenFileRefused("Token file `\(path)` should be owned by root group")) {
            try ClientToken.read(environmentToken: nil, path: path)
        }
    }

    @Test("device IDs: derived from the machine ID as Python's hmac computes it, else created once and kept")
    func deviceIds() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fz-id-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let machineId = directory + "-machine-id"
        defer { try? FileManager.default.removeItem(atPath: machineId) }
        #expect(FileManager.default.createFile(atPath: machineId, contents: Data("0123456789abcdef0123456789abcdef\n".utf8)))
        let expected = try await Self.offPool { () throws -> String in
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            python.arguments = ["python3", "-c", """
                import hmac, hashlib, sys
                print(hmac.new(b"753b38f9f96947ef8083802d5909a372", open(sys.argv[1], "rb").read(), hashlib.sha256).hexdigest())
                """, machineId]
            let output = Pipe()
            python.standardOutput = output
            try python.run()
            let expected = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).filter { !$0.isNewline }
            python.waitUntilExit()
            return expected
        }
        let path = directory + "/config/gateway_id"
        #expect(try DeviceId.getOrCreate(.gateway, path: path, machineIdPath: machineId) == expected)
        #expect(!FileManager.default.fileExists(atPath: path), "a derived ID is not saved")
        let created = try DeviceId.getOrCreate(.client, path: path, machineIdPath: directory + "/no-machine-id")
        #expect(created.count == 64 && created.allSatisfy(\.isHexDigit))
        #expect(try DeviceId.getOrCreate(.client, path: path, machineIdPath: machineId) == created, "a saved ID wins")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        let directoryMode = try FileManager.default.attributesOfItem(atPath: directory + "/config")[.posixPermissions] as? Int
        #expect(mode == 0o640 && directoryMode == 0o770)
    }

    /// A child process waited for on a thread of its own, so the concurrency pool stays free.
    @Test("UDP socket buffers from FIREZONE_UDP_SEND_BUFFER_SIZE and FIREZONE_UDP_RECV_BUFFER_SIZE, Firezone's by default (#10234)")
    func socketBuffers() throws {
        #expect(try resolve([]).socketBuffers == SocketBufferSizes())
        #expect(try resolve([], ["FIREZONE_UDP_SEND_BUFFER_SIZE": "2097152"]).socketBuffers == SocketBufferSizes(send: 2_097_152))
        #expect(throws: OptionError.invalidValue(name: "FIREZONE_UDP_SEND_BUFFER_SIZE", value: "lots", expected: "a positive number of bytes")) {
            try resolve([], ["FIREZONE_UDP_SEND_BUFFER_SIZE": "lots"])
        }
    }

    static func offPool<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Swift.Result { try body() }) }.start()
        }
    }
}
