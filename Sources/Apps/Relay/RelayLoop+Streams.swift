import AppRuntime
import CLinuxIO
import Glibc
import Logging
import SansIO
import Turn
import TurnRelay

/// A client on TURN over TCP or TLS: its connection, its TLS session, the frames it has sent so far, and what waits
/// to be written to it.
final class StreamClient {
    let connection: TcpConnection
    let tls: TlsSession?
    let deframer = StreamDeframer()
    /// Frames not yet taken by the socket; written at the end of each loop round, kept for the next when the socket
    /// is full. Its capacity stays, so a busy stream allocates only while its queue grows.
    var outbox: [UInt8] = []
    var lastHeard: Instant
    var waitingToWrite = false

    init(connection: TcpConnection, tls: TlsSession?, now: Instant) {
        self.connection = connection
        self.tls = tls
        lastHeard = now
    }
}

extension RelayLoop {
    /// At most this many clients on TCP at once; beyond, new connections are closed at once. Each costs a few KiB
    /// while idle and up to 130 KiB while a frame of the largest size arrives.
    static var maximumStreamClients: Int { 4096 }
    /// A stream whose client holds no allocation and has said nothing for this long is closed.
    static var idleStreamTimeout: Duration { .seconds(60) }
    /// Bytes queued for a slow reader before further frames to it are dropped (whole frames: the stream stays framed).
    static var outboxLimit: Int { 1 << 20 }

    func acceptStreams(_ listener: TcpListener, tls context: TlsContext?, now: Instant) {
        for _ in 0..<64 {
            guard let accepted = listener.accept() else { return }
            let connection: TcpConnection
            switch accepted {
            case .success(let next): connection = next
            case .failure(let error):
                logger.debug("Failed to accept a TCP connection", metadata: ["error": "\(error)"])
                return
            }
            guard streams.count < Self.maximumStreamClients, connection.remoteAddress.port != 0 else {
                tally.streamsRefused += 1
                continue  // released: closed
            }
            let session: TlsSession?
            do {
                session = try context.map { context throws(TlsError) in try TlsSession(context: context) }
            } catch {
                logger.debug("Failed to start TLS", metadata: ["client": "\(connection.remoteAddress)", "error": "\(error)"])
                continue
            }
            let fd = connection.fileDescriptor
            streams[fd] = StreamClient(connection: connection, tls: session, now: now)
            streamByAddress[connection.remoteAddress] = fd
            register(fd, token: Token.stream | UInt64(UInt32(bitPattern: fd)), events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
            tally.streamsAccepted += 1
            logger.debug("Stream client connected", metadata: ["client": "\(connection.remoteAddress)", "tls": "\(session != nil)"])
        }
    }

    func handleStream(_ fd: Int32, events: UInt32, now: Instant, unixTime: Int64) {
        guard let client = streams[fd] else { return }
        if events & EPOLLOUT.rawValue != 0 { writeOutbox(client) }
        if events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            readStream(client, now: now, unixTime: unixTime)
        }
    }

    /// A peer's datagram, framed by the core at the start of `scratch`, to a client on TCP: padded, queued.
    func sendToStream(_ back: ClientBound) {
        guard let fd = streamByAddress[back.client], let client = streams[fd] else { return }
        let padded = ChannelData.streamLength(frameLength: back.count)
        for index in back.count..<padded { scratch[index] = 0 }
        queue(UnsafeRawBufferPointer(rebasing: scratch[0..<padded]), to: client)
    }

    /// Writes every stream's queue; what the socket does not take waits for `EPOLLOUT`.
    func flushStreams() {
        for client in streams.values where !client.outbox.isEmpty && !client.waitingToWrite {
            writeOutbox(client)
        }
    }

    /// Once a second: closes streams that hold no allocation and stayed silent past ``idleStreamTimeout``.
    func sweepStreams(now: Instant) {
        guard nextStreamSweep.map({ now >= $0 }) ?? true else { return }
        nextStreamSweep = now + .seconds(1)
        for client in streams.values where now - client.lastHeard > Self.idleStreamTimeout {
            guard !core.holdsAllocation(RelayClient(address: client.connection.remoteAddress, transport: .stream)) else { continue }
            closeStream(client, now: now, reason: "idle without an allocation")
        }
    }

    private func readStream(_ client: StreamClient, now: Instant, unixTime: Int64) {
        for _ in 0..<4 {
            switch client.connection.read(into: client.tls == nil ? client.deframer.freeSpace : tlsScratch) {
            case .bytes(let count):
                client.lastHeard = now
                guard let tls = client.tls else {
                    client.deframer.commit(count)
                    guard handleFrames(of: client, now: now, unixTime: unixTime) else { return }
                    continue
                }
                tls.receive(UnsafeRawBufferPointer(rebasing: tlsScratch[0..<count]))
                guard decrypt(client, tls, now: now, unixTime: unixTime) else { return }
            case .wouldBlock:
                return
            case .closed:
                closeStream(client, now: now, reason: "closed by the client")
                return
            case .failed(let error):
                closeStream(client, now: now, reason: "\(error)")
                return
            }
        }
    }

    /// Every plaintext byte TLS has for the deframer, and every frame in it; false once the stream was closed.
    private func decrypt(_ client: StreamClient, _ tls: TlsSession, now: Instant, unixTime: Int64) -> Bool {
        defer { takeTlsOutput(client, tls) }  // the handshake's answers, alerts
        while true {
            let count: Int
            do {
                count = try tls.read(into: client.deframer.freeSpace)
            } catch {
                if error != .closed { tally.tlsFailures += 1 }
                closeStream(client, now: now, reason: "\(error)")
                return false
            }
            guard count > 0 else { return true }
            client.deframer.commit(count)
            guard handleFrames(of: client, now: now, unixTime: unixTime) else { return false }
        }
    }

    /// Every whole frame the deframer holds; false when the stream was not TURN and is now closed.
    private func handleFrames(of client: StreamClient, now: Instant, unixTime: Int64) -> Bool {
        do {
            while let frame = try client.deframer.nextFrame() {
                handleFrame(frame.bytes, from: client, address: client.connection.remoteAddress, now: now, unixTime: unixTime)
            }
            return true
        } catch {
            tally.streamFramingErrors += 1
            closeStream(client, now: now, reason: "\(error)")
            return false
        }
    }

    private func takeTlsOutput(_ client: StreamClient, _ tls: TlsSession) {
        tls.takeOutput(using: tlsScratch) { client.outbox.append(contentsOf: $0) }
    }

    private func handleFrame(_ frame: UnsafeRawBufferPointer, from client: StreamClient, address: SocketAddress, now: Instant, unixTime: Int64) {
        switch core.handleFromClient(frame, from: address, over: .stream, now: now, unixTime: unixTime) {
        case .answer(let answer):
            answer.withUnsafeBytes { queue($0, to: client) }
        case .relay(let forward):
            guard let out = portSockets[forward.port]?.first(where: { $0.localAddress.ip.version == forward.peer.ip.version }) else { return }
            enqueue(UnsafeRawBufferPointer(rebasing: frame[forward.payload]), on: out, to: forward.peer)
        case .drop:
            break
        }
    }

    private func queue(_ frame: UnsafeRawBufferPointer, to client: StreamClient) {
        guard client.outbox.count + frame.count <= Self.outboxLimit else {
            tally.streamBackpressureDrops += 1
            return
        }
        tally.datagramsSent += 1
        guard let tls = client.tls else {
            client.outbox.append(contentsOf: frame)
            return
        }
        do {
            try tls.write(frame)
        } catch {
            tally.tlsFailures += 1  // the read side sees the same failure and closes the stream
        }
        takeTlsOutput(client, tls)
    }

    private func writeOutbox(_ client: StreamClient) {
        let result = client.outbox.withUnsafeBytes { client.connection.write($0) }
        switch result {
        case .success(let written):
            client.outbox.removeFirst(written)
            let waiting = !client.outbox.isEmpty
            guard waiting != client.waitingToWrite else { return }
            client.waitingToWrite = waiting
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (waiting ? EPOLLOUT.rawValue : 0)
            event.data.u64 = Token.stream | UInt64(UInt32(bitPattern: client.connection.fileDescriptor))
            _ = epoll_ctl(epoll, EPOLL_CTL_MOD, client.connection.fileDescriptor, &event)
        case .failure(let error):
            tally.sendFailures += 1
            client.outbox.removeAll()
            logger.debug("Failed to write to a TCP client", metadata: ["client": "\(client.connection.remoteAddress)", "error": "\(error)"])
        }
    }

    /// Forgets the stream and frees its allocation (RFC 8656 §3: the allocation lives as long as the connection).
    private func closeStream(_ client: StreamClient, now: Instant, reason: String) {
        let fd = client.connection.fileDescriptor, address = client.connection.remoteAddress
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
        streams[fd] = nil
        if streamByAddress[address] == fd { streamByAddress[address] = nil }
        core.streamClosed(address, now: now)
        logger.debug("Stream client disconnected", metadata: ["client": "\(address)", "reason": "\(reason)"])
    }
}
