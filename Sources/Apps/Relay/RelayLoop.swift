import AppRuntime
import CLinuxIO
import Glibc
import Logging
import SansIO
import Synchronization
import TurnRelay

/// The relay's IO: the listening sockets (port 3478 on each family, UDP and TCP) and one socket per allocation port
/// and family, on one epoll thread. What arrives goes through the ``RelayCore``; answers and relayed datagrams leave in
/// `sendmmsg` batches (segmented where the kernel offloads it). Allocations' ports are bound and closed as the core
/// says; a port something else holds frees its allocation.
final class RelayLoop: @unchecked Sendable {
    /// What the loop counted, readable from any thread.
    struct Snapshot: Sendable {
        var relay = RelayStatistics()
        var allocations = 0
        var channels = 0
        var datagramsReceived = 0
        var datagramsSent = 0
        var sendFailures = 0
        var streamClients = 0
        var streamsAccepted = 0
        var streamsRefused = 0
        /// Streams closed because they sent something that is not TURN.
        var streamFramingErrors = 0
        /// Frames not queued on a stream whose peer reads too slowly.
        var streamBackpressureDrops = 0
        /// TLS streams closed because the handshake or a record failed.
        var tlsFailures = 0
    }

    let core: RelayCore
    private let bind: (v4: IPv4Address, v6: IPv6Address)
    private let listening: [UdpSocket]
    /// TURN over TCP: the listeners, and the connections by file descriptor and by the client's address.
    let tcpListeners: [TcpListener]
    /// TURN over TLS: the listeners and the certificate they present.
    let tlsListeners: [TcpListener]
    let tlsContext: TlsContext?
    /// Ciphertext read from or written to TLS streams.
    let tlsScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 32_768, alignment: 16)
    var streams: [Int32: StreamClient] = [:]
    var streamByAddress: [SocketAddress: Int32] = [:]
    var nextStreamSweep: Instant?
    private(set) var portSockets: [UInt16: [UdpSocket]] = [:]
    /// The listening sockets' batches, for good; an allocation port's only while it has something to send (a
    /// batch reserves 4 MiB of address space, and there may be thousands of ports).
    private var sendBatches: [Int32: SendBatch] = [:]
    private var spareBatches: [Bool: [SendBatch]] = [:]
    private var dirty: [Int32: UdpSocket] = [:]
    private let receiveBatch = ReceiveBatch(capacity: 32)
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536 + 4, alignment: 16)
    let epoll: Int32
    private let wakeup: Int32
    private let stopping = Atomic<Bool>(false)
    private let counters = Mutex(Snapshot())
    var tally = Snapshot()
    let logger: Logger
    private var nextReport: Instant?

    static var reportInterval: Duration { .seconds(60) }
    /// An allocation's port carries one client's peers: modest buffers, since thousands of them may exist.
    static var portOptions: UdpSocket.Options { UdpSocket.Options(buffers: SocketBufferSizes(send: 1 << 20, receive: 1 << 20)) }

    /// Every allocation holds a socket per family: the soft limit on open files goes up to the hard one.
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(limit.rlim_cur)
    }

    init(core: RelayCore, listenPort: UInt16, tcpListenPort: UInt16?, tls: (port: UInt16, context: TlsContext)?,
         bindIPv4: IPv4Address, bindIPv6: IPv6Address, logger: Logger) throws {
        self.core = core
        self.logger = logger
        bind = (bindIPv4, bindIPv6)
        var sockets: [UdpSocket] = []
        if core.configuration.publicIPv4 != nil { sockets.append(try UdpSocket(bind: SocketAddress(ip: .v4(bindIPv4), port: listenPort))) }
        if core.configuration.publicIPv6 != nil { sockets.append(try UdpSocket(bind: SocketAddress(ip: .v6(bindIPv6), port: listenPort))) }
        listening = sockets
        tcpListeners = try tcpListenPort.map { port in
            try sockets.map { try TcpListener(bind: SocketAddress(ip: $0.localAddress.ip, port: port)) }
        } ?? []
        tlsListeners = try tls.map { tls in
            try sockets.map { try TcpListener(bind: SocketAddress(ip: $0.localAddress.ip, port: tls.port)) }
        } ?? []
        tlsContext = tls?.context
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw SystemCallError("epoll_create1", errno: errno) }
        wakeup = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wakeup >= 0 else { throw SystemCallError("eventfd", errno: errno) }
        register(wakeup, token: 0)
        for (index, socket) in listening.enumerated() {
            register(socket.fileDescriptor, token: UInt64(1 + index))
            sendBatches[socket.fileDescriptor] = SendBatch(coalescing: socket.sendOffload)
        }
        for (index, listener) in tcpListeners.enumerated() { register(listener.fileDescriptor, token: Token.tcpListener | UInt64(index)) }
        for (index, listener) in tlsListeners.enumerated() { register(listener.fileDescriptor, token: Token.tlsListener | UInt64(index)) }
    }

    deinit {
        close(epoll)
        close(wakeup)
        scratch.deallocate()
        tlsScratch.deallocate()
    }

    var listeningAddresses: [SocketAddress] { listening.map(\.localAddress) }
    var tcpListeningAddresses: [SocketAddress] { tcpListeners.map(\.localAddress) }
    var tlsListeningAddresses: [SocketAddress] { tlsListeners.map(\.localAddress) }
    var snapshot: Snapshot { counters.withLock { $0 } }

    func stop() {
        stopping.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    /// Runs until ``stop()``; blocks the calling thread.
    func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while !stopping.load(ordering: .acquiring) {
            let timeout = MonotonicClock.milliseconds(until: core.pollTimeout(), from: MonotonicClock.now())
            let ready = epoll_wait(epoll, &events, Int32(events.count), min(timeout < 0 ? 1000 : timeout, 1000))
            let now = MonotonicClock.now()
            let unixTime = Int64(time(nil))
            if ready > 0 {
                for event in events[0..<Int(ready)] { handle(token: event.data.u64, events: event.events, now: now, unixTime: unixTime) }
            }
            if let deadline = core.pollTimeout(), deadline <= now { core.handleTimeout(now: now) }
            sweepStreams(now: now)
            applyEvents(now: now)
            flush()
            flushStreams()
            publish(now: now)
        }
    }

    // MARK: Reading

    /// What an epoll token names: the high 32 bits say the kind.
    enum Token {
        static let port: UInt64 = 1 << 32
        static let tcpListener: UInt64 = 2 << 32
        static let stream: UInt64 = 3 << 32
        static let tlsListener: UInt64 = 4 << 32
    }

    private func handle(token: UInt64, events: UInt32, now: Instant, unixTime: Int64) {
        if token == 0 {
            var value: UInt64 = 0
            _ = read(wakeup, &value, 8)
            return
        }
        switch token & ~0xFFFF_FFFF {
        case Token.tcpListener:
            acceptStreams(tcpListeners[Int(token & 0xFFFF_FFFF)], tls: nil, now: now)
            return
        case Token.tlsListener:
            acceptStreams(tlsListeners[Int(token & 0xFFFF_FFFF)], tls: tlsContext, now: now)
            return
        case Token.stream:
            handleStream(Int32(truncatingIfNeeded: token & 0xFFFF_FFFF), events: events, now: now, unixTime: unixTime)
            return
        default:
            break
        }
        if token < 1 << 32 {
            readListening(listening[Int(token - 1)], now: now, unixTime: unixTime)
            return
        }
        let port = UInt16(truncatingIfNeeded: token >> 8), index = Int(token & 0xFF)
        guard let sockets = portSockets[port], index < sockets.count else { return }  // closed earlier in this batch
        readPort(sockets[index], port: port, now: now)
    }

    private func readListening(_ socket: UdpSocket, now: Instant, unixTime: Int64) {
        drain(socket) { datagram, client in
            switch core.handleFromClient(UnsafeRawBufferPointer(datagram), from: client, now: now, unixTime: unixTime) {
            case .answer(let answer):
                answer.withUnsafeBytes { enqueue($0, on: socket, to: client) }
            case .relay(let forward):
                guard let out = portSockets[forward.port]?.first(where: { $0.localAddress.ip.version == forward.peer.ip.version })
                else { return }
                enqueue(UnsafeRawBufferPointer(rebasing: datagram[forward.payload]), on: out, to: forward.peer)
            case .drop:
                break
            }
        }
    }

    private func readPort(_ socket: UdpSocket, port: UInt16, now: Instant) {
        drain(socket) { datagram, peer in
            guard datagram.count + 4 <= scratch.count else { return }
            UnsafeMutableRawBufferPointer(rebasing: scratch[4..<(4 + datagram.count)]).copyMemory(from: UnsafeRawBufferPointer(datagram))
            guard let back = core.relayFromPeer(scratch, count: datagram.count, from: peer, port: port, now: now) else { return }
            guard back.transport == .udp else {
                sendToStream(back)
                return
            }
            guard let out = listening.first(where: { $0.localAddress.ip.version == back.client.ip.version }) else { return }
            enqueue(UnsafeRawBufferPointer(rebasing: scratch[0..<back.count]), on: out, to: back.client)
        }
    }

    /// Hands every datagram `socket` has (each segment of a coalesced one) with its source to `body`: a few batches
    /// at most, so one busy socket cannot starve the others.
    private func drain(_ socket: UdpSocket, _ body: (UnsafeMutableRawBufferPointer, SocketAddress) -> Void) {
        for _ in 0..<4 {
            guard let received = try? socket.receive(into: receiveBatch), received > 0 else { return }
            for index in 0..<received {
                guard let source = receiveBatch.source(at: index) else { continue }
                forEachSegment(index) { datagram in
                    tally.datagramsReceived += 1
                    body(datagram, source)
                }
            }
            if received < receiveBatch.capacity { return }
        }
    }

    /// Each datagram of slot `index`: one, or the segments the kernel's receive offload joined.
    private func forEachSegment(_ index: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let bytes = receiveBatch.bytes(at: index), size = max(receiveBatch.segmentSize(at: index), 1)
        var offset = 0
        while offset < bytes.count {
            body(UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + size)]))
            offset += size
        }
    }

    // MARK: Writing

    func enqueue(_ payload: UnsafeRawBufferPointer, on socket: UdpSocket, to destination: SocketAddress) {
        let fd = socket.fileDescriptor
        let batch = sendBatches[fd] ?? spareBatch(coalescing: socket.sendOffload)
        sendBatches[fd] = batch
        dirty[fd] = socket
        if batch.append(payload, to: destination) { return }
        send(socket, batch)
        if !batch.append(payload, to: destination) { tally.sendFailures += 1 }
    }

    private func spareBatch(coalescing: Bool) -> SendBatch {
        spareBatches[coalescing]?.popLast() ?? SendBatch(capacity: 16, coalescing: coalescing)
    }

    private func flush() {
        for (fd, socket) in dirty {
            guard let batch = sendBatches[fd] else { continue }
            send(socket, batch)
            guard !listening.contains(where: { $0.fileDescriptor == fd }) else { continue }
            sendBatches[fd] = nil
            spareBatches[batch.coalescing, default: []].append(batch)
        }
        dirty.removeAll(keepingCapacity: true)
    }

    private func send(_ socket: UdpSocket, _ batch: SendBatch) {
        let result = socket.send(batch)
        tally.datagramsSent += result.sent
        tally.sendFailures += result.refused.count
    }


    // MARK: Ports

    private func applyEvents(now: Instant) {
        while let event = core.pollEvent() {
            switch event {
            case let .portOpened(port, families):
                openPort(port, families: families, now: now)
            case .portClosed(let port):
                closePort(port)
            }
        }
    }

    private func openPort(_ port: UInt16, families: [IpVersion], now: Instant) {
        var sockets: [UdpSocket] = []
        for family in families {
            let address = family == .v4 ? SocketAddress(ip: .v4(bind.v4), port: port) : SocketAddress(ip: .v6(bind.v6), port: port)
            do {
                sockets.append(try UdpSocket(bind: address, options: Self.portOptions))
            } catch {
                logger.info("Cannot open an allocation's port; freeing it", metadata: ["port": "\(port)", "error": "\(error)"])
                core.portUnavailable(port, now: now)
                return
            }
        }
        for (index, socket) in sockets.enumerated() {
            register(socket.fileDescriptor, token: Token.port | UInt64(port) << 8 | UInt64(index))
        }
        portSockets[port] = sockets
        logger.info("Created allocation", metadata: ["port": "\(port)", "family": "\(families.map(\.description).joined(separator: ","))"])
    }

    private func closePort(_ port: UInt16) {
        guard let sockets = portSockets.removeValue(forKey: port) else { return }
        for socket in sockets {
            _ = epoll_ctl(epoll, EPOLL_CTL_DEL, socket.fileDescriptor, nil)
            if let batch = sendBatches.removeValue(forKey: socket.fileDescriptor) {
                if !batch.isEmpty { send(socket, batch) }
                spareBatches[batch.coalescing, default: []].append(batch)
            }
            dirty[socket.fileDescriptor] = nil
        }
        logger.info("Freeing allocation", metadata: ["port": "\(port)"])
    }

    func register(_ fd: Int32, token: UInt64, events: UInt32 = EPOLLIN.rawValue) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        _ = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
    }

    private func publish(now: Instant) {
        tally.relay = core.statistics
        tally.allocations = core.allocationCount
        tally.channels = core.channelCount
        tally.streamClients = streams.count
        if nextReport.map({ now >= $0 }) ?? true {
            if nextReport != nil {
                logger.info("Allocations = \(tally.allocations) Channels = \(tally.channels)", metadata: [
                    "to_peers": "\(tally.relay.relayedToPeers)", "to_clients": "\(tally.relay.relayedToClients)",
                ])
            }
            nextReport = now + Self.reportInterval
        }
        let snapshot = tally
        counters.withLock { $0 = snapshot }
    }
}
