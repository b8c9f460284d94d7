import Foundation
import Glibc
import SansIO

/// A blocking-with-timeout UDP socket on 127.0.0.1 for the interop tests.
final class UdpSocket {
    let fd: Int32
    let localAddress: SocketAddress

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
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

    func send(_ bytes: [UInt8], to destination: SocketAddress) {
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
    func receive(timeoutMilliseconds: Int32) -> (bytes: [UInt8], source: SocketAddress)? {
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
final class TestClock {
    var offset: Duration = .zero
    var now: Instant {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Instant(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)) + offset
    }
}
