#if canImport(Glibc)
import DnsNat
import Glibc
import SansIO

/// A DNS query to a nameserver, outside the tunnel: what the gateway forwards and the client recurses.
public enum DnsExchange {
    /// One UDP exchange with a 5 s timeout; `nil` when nothing (or nothing readable) came back.
    public static func udp(_ query: DnsMessage, with server: SocketAddress) -> DnsMessage? {
        guard let socket = try? UdpSocket(bind: SocketAddress(server.ip.version == .v4 ? "0.0.0.0:0" : "[::]:0")!) else { return nil }
        let batch = SendBatch(capacity: 1, coalescing: false)
        _ = query.encode().withUnsafeBytes { batch.append($0, to: server) }
        guard socket.send(batch).sent == 1 else { return nil }
        var descriptor = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
        let received = ReceiveBatch(capacity: 1, slotSize: 65_536)
        while poll(&descriptor, 1, 5_000) > 0 {
            guard let count = try? socket.receive(into: received), count > 0, received.source(at: 0) == server else { continue }
            return try? DnsMessage(decoding: Array(received.bytes(at: 0)))
        }
        return nil
    }
}
#endif
