#if canImport(Glibc)
import CLinuxIO
import Glibc
import SansIO
import Turn

/// A client's connection to a TURN relay over TCP or TLS (RFC 8656 §3), for networks that block UDP: what the node
/// would send to the relay as datagrams goes on the stream (ChannelData padded to 4 bytes), and what the stream
/// brings back comes out as the datagrams the node expects. Non-blocking: the owner's event loop waits for the file
/// descriptor (``wantsToWrite`` says whether for writing too) and calls ``handleWritable()`` and
/// ``handleReadable(_:)``.
///
/// ```swift
/// let stream = try RelayStream(connectingTo: relay, transport: .tls(serverName: "relay.example.com", context: context))
/// stream.send(transmit.payload)                        // queued until connected
/// try stream.handleReadable { datagram in node.handle(datagram, from: relay) }
/// if stream.wantsToWrite { try stream.handleWritable() }
/// ```
public final class RelayStream {
    /// How the stream reaches the relay.
    public enum Transport {
        case tcp
        /// TLS, naming `serverName` (SNI) and checking the relay's certificate for it.
        case tls(serverName: String, context: TlsContext)
    }

    public enum State: Equatable {
        case connecting
        case established
        case closed(RelayStreamError)
    }

    /// The relay's address: the destination of what the node sends, the source of what it receives.
    public let relay: SocketAddress
    public let fileDescriptor: Int32
    public private(set) var state = State.connecting
    /// Bytes queued for a relay that reads too slowly before further datagrams are dropped (whole ones).
    public static let outboxLimit = 1 << 20

    private let tls: TlsSession?
    private let deframer = StreamDeframer()
    private var outbox: [UInt8] = []
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 32_768, alignment: 16)
    /// Datagrams dropped because the outbox was full.
    public private(set) var dropped = 0

    /// Starts connecting (non-blocking) to `relay`, with Firezone's firewall mark when given.
    public init(connectingTo relay: SocketAddress, transport: Transport, firewallMark: UInt32? = nil) throws(RelayStreamError) {
        self.relay = relay
        let family = relay.ip.version == .v4 ? AF_INET : AF_INET6
        let fd = socket(family, CTCP_SOCK_STREAM_NONBLOCK_CLOEXEC, 0)
        guard fd >= 0 else { throw .connectFailed(.last("socket TCP to \(relay)")) }
        fileDescriptor = fd
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if let firewallMark {
            var mark = Int32(bitPattern: firewallMark)
            _ = setsockopt(fd, SOL_SOCKET, CUDP_SO_MARK, &mark, socklen_t(MemoryLayout<Int32>.size))
        }
        do {
            switch transport {
            case .tcp: tls = nil
            case let .tls(serverName, context): tls = try TlsSession(context: context, serverName: serverName)
            }
        } catch {
            close(fd)
            scratch.deallocate()
            throw .tls(error)
        }
        var storage = sockaddr_storage()
        let length = relay.write(to: &storage)
        let result = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) } }
        if result != 0, errno != EINPROGRESS {
            state = .closed(.connectFailed(SystemCallError("connect TCP to \(relay)", errno: errno)))
        } else if result == 0 {
            established()
        }
    }

    deinit {
        close(fileDescriptor)
        scratch.deallocate()
    }

    /// Whether the loop should wait for the socket to become writable: still connecting, or bytes are queued.
    public var wantsToWrite: Bool {
        state == .connecting || (state == .established && (!outbox.isEmpty || (tls?.pendingOutput ?? 0) > 0))
    }

    /// Queues a datagram for the relay: STUN as it is, ChannelData padded to a multiple of 4 (TLS-encrypted when
    /// TLS). False when it was dropped: the stream is closed or its queue is full.
    @discardableResult
    public func send(_ datagram: UnsafeRawBufferPointer) -> Bool {
        let isChannelData = datagram.first.map { (0x40...0x7F).contains($0) } ?? false
        let padded = isChannelData ? ChannelData.streamLength(frameLength: datagram.count) : datagram.count
        if case .closed = state { return drop() }
        guard outbox.count + padded <= Self.outboxLimit else { return drop() }
        for index in 0..<(padded - datagram.count) { scratch[index] = 0 }
        let padding = UnsafeRawBufferPointer(rebasing: scratch[0..<(padded - datagram.count)])
        guard let tls else {
            outbox.append(contentsOf: datagram)
            outbox.append(contentsOf: padding)
            return true
        }
        do {
            try tls.write(datagram)
            try tls.write(padding)
        } catch {
            fail(.tls(error))
            return false
        }
        takeTlsOutput()
        return true
    }

    private func drop() -> Bool {
        dropped += 1
        return false
    }

    @discardableResult
    public func send(_ datagram: [UInt8]) -> Bool {
        datagram.withUnsafeBytes { send($0) }
    }

    /// The socket is writable: the connection completed (or failed), or queued bytes can go.
    public func handleWritable() {
        if state == .connecting {
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fileDescriptor, SOL_SOCKET, SO_ERROR, &code, &length)
            guard code == 0 else {
                state = .closed(.connectFailed(SystemCallError("connect TCP to \(relay)", errno: code)))
                return
            }
            established()
        }
        flush()
    }

    /// The socket is readable: every whole datagram that arrived goes to `body` (valid during the call). Afterwards
    /// ``state`` says whether the relay closed the stream or sent something that is not TURN.
    public func handleReadable(_ body: (UnsafeRawBufferPointer) -> Void) {
        guard state == .established else {
            if state == .connecting { handleWritable() }
            return
        }
        for _ in 0..<8 {
            let target = tls == nil ? deframer.freeSpace : scratch
            let count = read(fileDescriptor, target.baseAddress, target.count)
            if count == 0 { return fail(.closedByRelay) }
            if count < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
                return fail(.readFailed(SystemCallError("read TCP from \(relay)", errno: code)))
            }
            if let tls {
                tls.receive(UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
                do {
                    while true {
                        let plain = try tls.read(into: deframer.freeSpace)
                        guard plain > 0 else { break }
                        deframer.commit(plain)
                        guard deliverFrames(body) else { return }
                    }
                } catch {
                    return fail(error == .closed ? .closedByRelay : .tls(error))
                }
                takeTlsOutput()
                flush()
            } else {
                deframer.commit(count)
                guard deliverFrames(body) else { return }
            }
        }
    }

    private func deliverFrames(_ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        do {
            while let frame = try deframer.nextFrame() { body(frame.bytes) }
            return true
        } catch {
            fail(.framing(error))
            return false
        }
    }

    private func established() {
        state = .established
        takeTlsOutput()  // a TLS client's ClientHello
        flush()
    }

    private func takeTlsOutput() {
        tls?.takeOutput(using: scratch) { outbox.append(contentsOf: $0) }
    }

    private func flush() {
        guard state == .established, !outbox.isEmpty else { return }
        let written = outbox.withUnsafeBytes { Glibc.send(fileDescriptor, $0.baseAddress, $0.count, CTCP_MSG_NOSIGNAL) }
        if written > 0 {
            outbox.removeFirst(written)
        } else if written < 0, errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR {
            fail(.writeFailed(SystemCallError("write TCP to \(relay)", errno: errno)))
        }
    }

    private func fail(_ error: RelayStreamError) {
        if case .closed = state { return }
        state = .closed(error)
        outbox.removeAll()
    }
}

/// Why a stream to a relay ended.
public enum RelayStreamError: Error, Hashable, Sendable, CustomStringConvertible {
    case connectFailed(SystemCallError)
    case closedByRelay
    case readFailed(SystemCallError)
    case writeFailed(SystemCallError)
    case tls(TlsError)
    /// The relay sent something that is not STUN or ChannelData.
    case framing(StreamFramingError)

    public var description: String {
        switch self {
        case .connectFailed(let error): "\(error)"
        case .closedByRelay: "the relay closed the connection"
        case .readFailed(let error), .writeFailed(let error): "\(error)"
        case .tls(let error): "\(error)"
        case .framing(let error): "the relay sent what is not TURN: \(error)"
        }
    }
}
#endif
