#if canImport(Glibc)
import CLinuxIO
import Glibc
import SansIO

/// A non-blocking listening TCP socket (TURN over TCP or TLS on the relay): `accept` hands out connections until
/// none is waiting.
public final class TcpListener {
    public let fileDescriptor: Int32
    public let localAddress: SocketAddress

    public init(bind address: SocketAddress, backlog: Int32 = 1024) throws(SystemCallError) {
        let family = address.ip.version == .v4 ? AF_INET : AF_INET6
        let fd = socket(family, CTCP_SOCK_STREAM_NONBLOCK_CLOEXEC, 0)
        guard fd >= 0 else { throw .last("socket TCP \(address)") }
        do throws(SystemCallError) {
            if family == AF_INET6 { try UdpSocket.set(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY") }
            try UdpSocket.set(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
            var storage = sockaddr_storage()
            let length = address.write(to: &storage)
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
            }
            guard bound == 0 else { throw .last("bind TCP \(address)") }
            guard listen(fd, backlog) == 0 else { throw .last("listen TCP \(address)") }
            localAddress = try Self.localAddress(of: fd, address)
        } catch {
            close(fd)
            throw error
        }
        fileDescriptor = fd
    }

    deinit { close(fileDescriptor) }

    /// The next waiting connection, or `nil` when none is (or the kernel refused one, which `error` then says).
    public func accept() -> Result<TcpConnection, SystemCallError>? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { ctcp_accept4(fileDescriptor, $0, &length, CTCP_ACCEPT_FLAGS) }
        }
        guard fd >= 0 else {
            let code = errno
            return code == EAGAIN || code == EWOULDBLOCK ? nil : .failure(SystemCallError("accept TCP \(localAddress)", errno: code))
        }
        guard let remote = SocketAddress(&storage) else {
            close(fd)
            return .failure(SystemCallError("accept TCP \(localAddress): not an IP address", errno: EAFNOSUPPORT))
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return .success(TcpConnection(fileDescriptor: fd, remoteAddress: remote))
    }

    static func localAddress(of fd: Int32, _ address: SocketAddress) throws(SystemCallError) -> SocketAddress {
        var assigned = sockaddr_storage()
        var assignedLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &assigned) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &assignedLength) }
        }
        guard named == 0, let local = SocketAddress(&assigned) else { throw .last("getsockname TCP \(address)") }
        return local
    }
}

/// One accepted, non-blocking TCP connection; closed when released.
public final class TcpConnection {
    public let fileDescriptor: Int32
    public let remoteAddress: SocketAddress

    init(fileDescriptor: Int32, remoteAddress: SocketAddress) {
        self.fileDescriptor = fileDescriptor
        self.remoteAddress = remoteAddress
    }

    deinit { close(fileDescriptor) }

    /// What one `read` gave.
    public enum ReadOutcome: Equatable {
        case bytes(Int)
        /// Nothing more now.
        case wouldBlock
        /// The peer closed its side.
        case closed
        case failed(SystemCallError)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadOutcome {
        let count = Glibc.read(fileDescriptor, buffer.baseAddress, buffer.count)
        if count > 0 { return .bytes(count) }
        if count == 0 { return .closed }
        let code = errno
        return code == EAGAIN || code == EWOULDBLOCK || code == EINTR ? .wouldBlock
            : .failed(SystemCallError("read TCP \(remoteAddress)", errno: code))
    }

    /// Writes what the socket takes now: the count (0 when its buffer is full), or the error.
    public func write(_ bytes: UnsafeRawBufferPointer) -> Result<Int, SystemCallError> {
        let count = send(fileDescriptor, bytes.baseAddress, bytes.count, CTCP_MSG_NOSIGNAL)
        if count >= 0 { return .success(count) }
        let code = errno
        return code == EAGAIN || code == EWOULDBLOCK || code == EINTR ? .success(0)
            : .failure(SystemCallError("write TCP \(remoteAddress)", errno: code))
    }
}
#endif
