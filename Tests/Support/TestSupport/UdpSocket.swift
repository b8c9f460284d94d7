import Foundation
import Glibc
import SansIO

/// A blocking-with-timeout IPv4 UDP socket for the interop tests (127.0.0.1 unless told otherwise).
public final class UdpSocket {
    public let fd: Int32
    public let localAddress: SocketAddress

    public init(bindTo ip: String = "127.0.0.1") throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(ip)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        localAddress = SocketAddress(ip: .v4(IPv4Address(UInt32(bigEndian: address.sin_addr.s_addr))), port: UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8], to destination: SocketAddress) {
        guard case .v4(let ip) = destination.ip else { return }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = destination.port.bigEndian
        address.sin_addr.s_addr = ip.value.bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// The next datagram, or `nil` after `milliseconds` without one.
    public func receive(timeoutMilliseconds: Int32) -> (bytes: [UInt8], source: SocketAddress)? {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, timeoutMilliseconds) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 2048)
        var source = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = withUnsafeMutablePointer(to: &source) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
        }
        guard count >= 0 else { return nil }
        return (Array(buffer.prefix(count)),
                SocketAddress(ip: .v4(IPv4Address(UInt32(bigEndian: source.sin_addr.s_addr))), port: UInt16(bigEndian: source.sin_port)))
    }
}

/// CLOCK_MONOTONIC, plus an offset a test can move forward to reach long timers (refresh at half the lifetime).
public final class TestClock {
    public var offset: Duration = .zero
    public init() {}
    public var now: Instant {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Instant(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)) + offset
    }
}

/// Runs a command to completion and returns its status and standard output.
public enum Shell {
    @discardableResult
    public static func run(_ arguments: String..., allowFailure: Bool = false) throws -> (status: Int32, output: String) {
        try run(arguments, allowFailure: allowFailure)
    }

    @discardableResult
    public static func run(_ arguments: [String], allowFailure: Bool = false) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let (status, output) = try runCapturing(process)
        if !allowFailure, status != 0 {
            throw ShellError.failed(arguments.joined(separator: " "), output)
        }
        return (status, output)
    }

    /// Runs `process` to its end with standard output in a scratch file, and returns its status and that output.
    /// Not a pipe: a process another thread starts meanwhile inherits the pipe's write end (Foundation does not
    /// open it close-on-exec), and a long-lived one (a daemon of an end-to-end test) would keep the reader
    /// waiting for an end of file for ever.
    public static func runCapturing(_ process: Process) throws -> (status: Int32, output: String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fz-shell-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ShellError.failed("create \(path)", "") }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? output.close() }
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return (process.terminationStatus, text)
    }
}

public enum ShellError: Error, CustomStringConvertible {
    case failed(String, String)
    public var description: String {
        switch self {
        case let .failed(command, output): "\(command) failed: \(output)"
        }
    }
}
