#if canImport(Glibc)
import Dns
import Glibc
import SansIO

/// A DNS query to a nameserver, outside the tunnel: what the gateway forwards and the client recurses.
public enum DnsExchange {
    /// One UDP exchange; `nil` when nothing (or nothing readable) came back from `server` within `timeout`.
    public static func udp(_ query: DnsMessage, with server: SocketAddress, timeout: Duration = .seconds(5)) -> DnsMessage? {
        guard let socket = try? UdpSocket(bind: SocketAddress(server.ip.version == .v4 ? "0.0.0.0:0" : "[::]:0")!) else { return nil }
        let batch = SendBatch(capacity: 1, coalescing: false)
        _ = query.encode().withUnsafeBytes { batch.append($0, to: server) }
        guard socket.send(batch).sent == 1 else { return nil }
        var descriptor = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
        let received = ReceiveBatch(capacity: 1, slotSize: 65_536)
        while poll(&descriptor, 1, Int32(timeout.milliseconds)) > 0 {
            guard let count = try? socket.receive(into: received), count > 0, received.source(at: 0) == server else { continue }
            return try? DnsMessage(decoding: Array(received.bytes(at: 0)))
        }
        return nil
    }

    /// One exchange over TCP with RFC 1035's two-byte length prefix; `nil` when the connection, the write or
    /// the read failed or took longer than `timeout` each.
    public static func tcp(_ query: DnsMessage, with server: SocketAddress, timeout: Duration = .seconds(5)) -> DnsMessage? {
        let family = server.ip.version == .v4 ? AF_INET : AF_INET6
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var limit = timeval(tv_sec: Int(timeout.milliseconds / 1000), tv_usec: Int(timeout.milliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var storage = sockaddr_storage()
        let length = server.write(to: &storage)
        let connected = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, length) }
        }
        guard connected == 0 else { return nil }
        let message = query.encode()
        let framed = [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
        guard send(descriptor, framed, framed.count, Int32(MSG_NOSIGNAL)) == framed.count,
              let prefix = readExactly(2, from: descriptor)
        else { return nil }
        guard let body = readExactly(Int(prefix[0]) << 8 | Int(prefix[1]), from: descriptor) else { return nil }
        return try? DnsMessage(decoding: body)
    }

    private static func readExactly(_ count: Int, from descriptor: Int32) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let read = bytes.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress! + filled, count - filled, 0) }
            guard read > 0 else { return nil }
            filled += read
        }
        return bytes
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
#endif
