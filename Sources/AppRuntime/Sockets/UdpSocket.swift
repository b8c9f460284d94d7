#if canImport(Glibc)
import CLinuxIO
import Glibc
import SansIO

/// A non-blocking UDP socket for the data plane: batched reads (`recvmmsg`, with the kernel's receive offload
/// coalescing a flow's datagrams where it can) and batched writes (`sendmmsg`, with segmentation offload sending
/// a run of equal-sized datagrams to one destination as one buffer). Large socket buffers and Firezone's
/// firewall mark (so the tunnel's own traffic never routes into the tunnel) are set when asked.
public final class UdpSocket {
    public let fileDescriptor: Int32
    public let localAddress: SocketAddress
    /// The kernel coalesces received datagrams (`UDP_GRO`).
    public let receiveOffload: Bool
    /// The kernel segments sent buffers (`UDP_SEGMENT`); turned off for good when the egress device refuses a
    /// segmented send.
    public private(set) var sendOffload: Bool

    public struct Options: Sendable {
        /// Firezone's `0xfd002021`, or `nil` for none.
        public var firewallMark: UInt32?
        /// Bytes; raised past `rmem_max`/`wmem_max` with the `…FORCE` options when the process may.
        public var receiveBufferSize: Int
        public var sendBufferSize: Int
        public var receiveOffload = true
        public var sendOffload = true

        public init(firewallMark: UInt32? = nil, buffers: SocketBufferSizes = SocketBufferSizes()) {
            self.firewallMark = firewallMark
            receiveBufferSize = buffers.receive
            sendBufferSize = buffers.send
        }
    }

    public init(bind address: SocketAddress, options: Options = Options()) throws(SystemCallError) {
        let family = address.ip.version == .v4 ? AF_INET : AF_INET6
        let fd = socket(family, CUDP_SOCK_DGRAM_NONBLOCK_CLOEXEC, 0)
        guard fd >= 0 else { throw .last("socket UDP \(address)") }
        do throws(SystemCallError) {
            if family == AF_INET6 { try Self.set(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY") }
            if let mark = options.firewallMark { try Self.set(fd, SOL_SOCKET, CUDP_SO_MARK, Int32(bitPattern: mark), "SO_MARK") }
            Self.setBuffer(fd, force: CUDP_SO_RCVBUFFORCE, plain: SO_RCVBUF, options.receiveBufferSize)
            Self.setBuffer(fd, force: CUDP_SO_SNDBUFFORCE, plain: SO_SNDBUF, options.sendBufferSize)
            var storage = sockaddr_storage()
            let length = address.write(to: &storage)
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
            }
            guard bound == 0 else { throw .last("bind UDP \(address)") }
            var assigned = sockaddr_storage()
            var assignedLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &assigned) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &assignedLength) }
            }
            guard named == 0, let local = SocketAddress(&assigned) else { throw .last("getsockname UDP \(address)") }
            localAddress = local
        } catch {
            close(fd)
            throw error
        }
        fileDescriptor = fd
        if family == AF_INET {
            _ = try? Self.set(fd, Int32(IPPROTO_IP), CUDP_IP_PKTINFO, 1, "IP_PKTINFO")
        } else {
            _ = try? Self.set(fd, Int32(IPPROTO_IPV6), CUDP_IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO")
        }
        receiveOffload = options.receiveOffload && (try? Self.set(fd, CUDP_SOL_UDP, CUDP_UDP_GRO, 1, "UDP_GRO")) != nil
        // Setting a zero segment size is how to ask whether the kernel segments at all.
        sendOffload = options.sendOffload && (try? Self.set(fd, CUDP_SOL_UDP, CUDP_UDP_SEGMENT, 0, "UDP_SEGMENT")) != nil
    }

    /// Binds `ip:port` when that port is free, else a port the kernel picks; `unavailable` is why `port` was not
    /// taken (`nil` when it was).
    public static func bind(_ ip: IpAddress, preferringPort port: UInt16, options: Options = Options())
        throws(SystemCallError) -> (socket: UdpSocket, unavailable: SystemCallError?) {
        do {
            return (try UdpSocket(bind: SocketAddress(ip: ip, port: port), options: options), nil)
        } catch {
            guard port != 0 else { throw error }
            return (try UdpSocket(bind: SocketAddress(ip: ip, port: 0), options: options), error)
        }
    }

    deinit {
        close(fileDescriptor)
    }

    /// The socket's receive and send buffer sizes as the kernel reports them.
    public var bufferSizes: (receive: Int, send: Int) {
        (Self.get(fileDescriptor, SO_RCVBUF), Self.get(fileDescriptor, SO_SNDBUF))
    }

    /// Fills `batch` with what is waiting; returns the number of datagrams (each possibly several coalesced
    /// segments), 0 when nothing is.
    public func receive(into batch: ReceiveBatch) throws(SystemCallError) -> Int {
        batch.prepare()
        let count = cudp_recvmmsg(fileDescriptor, batch.messages, UInt32(batch.capacity), 0)
        guard count >= 0 else {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return 0 }
            throw .last("recvmmsg \(localAddress)")
        }
        batch.received = Int(count)
        return Int(count)
    }

    /// Sends everything in `batch` and empties it. A datagram the kernel refuses (an unreachable network, a full
    /// buffer) is skipped and counted in the result; the rest still go.
    ///
    /// A segmented message the egress device cannot offload (`EIO`, or `EINVAL`, e.g. with transmit checksum
    /// offload off) goes again as its datagrams one by one, and this socket segments no more (Firezone #10279);
    /// `segmentationRefused` says that happened in this call.
    @discardableResult
    public func send(_ batch: SendBatch) -> (sent: Int, refused: [SystemCallError], segmentationRefused: Bool) {
        defer { batch.removeAll() }
        let total = batch.prepare(segmenting: sendOffload)
        var offset = 0, sent = 0
        var refused: [SystemCallError] = []
        var segmentationRefused = false
        while offset < total {
            let count = cudp_sendmmsg(fileDescriptor, batch.messages + offset, UInt32(total - offset), 0)
            if count > 0 {
                for index in offset..<(offset + Int(count)) { sent += batch.segments(of: index) }
                offset += Int(count)
                continue
            }
            let error = SystemCallError.last("sendmmsg to \(batch.destination(of: offset))")
            if error.errno == EINTR { continue }
            if (error.errno == EIO || error.errno == EINVAL), batch.segments(of: offset) > 1 {
                segmentationRefused = segmentationRefused || sendOffload
                sendOffload = false
                batch.coalescing = false
                sent += sendSegmentsOneByOne(batch, message: offset, refused: &refused)
            } else {
                refused.append(error)
            }
            offset += 1
        }
        return (sent, refused, segmentationRefused)
    }

    private func sendSegmentsOneByOne(_ batch: SendBatch, message: Int, refused: inout [SystemCallError]) -> Int {
        var sent = 0
        batch.forEachSegment(of: message) { header in
            while true {
                if sendmsg(fileDescriptor, &header, 0) >= 0 {
                    sent += 1
                    return
                }
                guard errno == EINTR else {
                    refused.append(.last("sendmsg to \(batch.destination(of: message))"))
                    return
                }
            }
        }
        return sent
    }

    static func set(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32, _ name: String) throws(SystemCallError) {
        var value = value
        guard setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else { throw .last("setsockopt \(name)") }
    }

    private static func get(_ fd: Int32, _ option: Int32) -> Int {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, option, &value, &length)
        return Int(value)
    }

    /// The forced size needs CAP_NET_ADMIN; without it the plain option gets what `rmem_max`/`wmem_max` allow.
    private static func setBuffer(_ fd: Int32, force: Int32, plain: Int32, _ size: Int) {
        var value = Int32(clamping: size)
        guard setsockopt(fd, SOL_SOCKET, force, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 else { return }
        setsockopt(fd, SOL_SOCKET, plain, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}
#endif
