#if canImport(Glibc)
import CLinuxIO
import Glibc
import IpPacket
import Logging
import SansIO
import Synchronization
import TunOffload
import Tunnel

/// What an ``EventLoop`` counted, readable from any thread.
public struct EventLoopStatistics: Sendable, Equatable {
    public var datagramsReceived = 0
    public var datagramsSent = 0
    public var tunPacketsRead = 0
    public var tunPacketsWritten = 0
    /// Reads and writes on the TUN device: fewer than its packets when offloads join them.
    public var tunFramesRead = 0
    public var tunFramesWritten = 0
    /// Datagrams and packets the plane refused with an error.
    public var refused = 0
    /// Bytes from the TUN device that are not an IP packet (or a frame its offloads could not split).
    public var malformedTunPackets = 0
    /// Packets for the TUN device that it refused (its queue full).
    public var tunWriteFailures = 0
    /// Datagrams the kernel would not send.
    public var sendFailures = 0
    /// Sockets that stopped segmenting because the egress device refused a segmented send (Firezone #10279).
    public var segmentationRefusals = 0
    /// ``EventLoop/replaceSockets(_:failed:)`` calls whose new sockets could not be made (the old ones stayed).
    public var socketReplacementFailures = 0
    /// Streams opened to relays UDP cannot reach, and those that failed or ended.
    public var relayStreamsOpened = 0
    public var relayStreamFailures = 0
    public var batches = 0
}

/// The data plane's thread, in the spirit of Firezone's event loop: wait until the TUN device, a UDP socket, a
/// timer or a command is ready, take everything that is ready as one batch, drive the ``DataPlane``, and flush
/// its transmits with one `sendmmsg` per socket. A bad packet is counted and never aborts the batch.
///
/// The plane is owned by the loop's thread. Other threads reach it only through ``execute(_:)`` (portal
/// messages, resolver answers) and stop the loop with ``stop()``.
public final class EventLoop<Plane: DataPlane>: @unchecked Sendable {
    /// What the loop counted, readable from any thread.
    public typealias Statistics = EventLoopStatistics

    private let plane: Plane
    private let tun: TunDevice
    private var sockets: [UdpSocket]
    private var sendBatches: [SendBatch]
    private let receiveBatch = ReceiveBatch()
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: PacketLimits.bufferSize, alignment: 16)
    private let pool: PacketBufferPool
    private let epoll: Int32
    private let wakeup: Int32
    private let commands = Mutex<[@Sendable (Plane, Instant) -> Void]>([])
    private let stopping = Atomic<Bool>(false)
    private let counters = Mutex(Statistics())
    private var tally = Statistics()
    /// Runs on the loop thread after every batch: drain the plane's portal messages and events here.
    private let afterBatch: (Plane, Instant) -> Void
    /// A buffer read from the TUN device that turned out empty, kept for the next read.
    private var spare: PacketBuffer?
    /// With offloads: a whole frame from the TUN device (header and up to 64 KiB), and the writes' coalescer.
    private let tunFrame: UnsafeMutableRawBufferPointer?
    private let coalescer = TunWriteCoalescer()
    /// TCP and TLS streams to relays that UDP cannot reach, as the plane asks.
    private let relayStreams: RelayStreamSet

    /// Packets and datagrams taken per source per batch, so one busy source cannot starve the others.
    static var batchLimit: Int { 64 }

    /// `firewallMark` marks the streams to relays as the UDP sockets are marked; `logger` gets their connects and ends.
    public init(plane: Plane, tun: TunDevice, sockets: [UdpSocket], pool: PacketBufferPool = .shared, firewallMark: UInt32? = nil,
                logger: Logger? = nil, afterBatch: @escaping (Plane, Instant) -> Void = { _, _ in }) throws(SystemCallError) {
        self.plane = plane
        self.tun = tun
        self.sockets = sockets
        self.pool = pool
        self.afterBatch = afterBatch
        sendBatches = sockets.map { SendBatch(coalescing: $0.sendOffload) }
        tunFrame = tun.offloads ? .allocate(byteCount: VirtioNetHeader.size + 65_535, alignment: 16) : nil
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw .last("epoll_create1") }
        relayStreams = RelayStreamSet(epoll: epoll, firewallMark: firewallMark, logger: logger)
        wakeup = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wakeup >= 0 else {
            close(epoll)
            throw .last("eventfd")
        }
        for (index, fd) in ([wakeup, tun.fileDescriptor] + sockets.map(\.fileDescriptor)).enumerated() {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.u64 = UInt64(index)
            guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else {
                close(epoll)
                close(wakeup)
                throw .last("epoll_ctl ADD \(fd)")
            }
        }
    }

    deinit {
        close(epoll)
        close(wakeup)
        output.deallocate()
        tunFrame?.deallocate()
    }

    public var statistics: Statistics { counters.withLock { $0 } }

    /// Runs `body` on the loop thread with the plane and the loop's clock, at the start of the next batch.
    public func execute(_ body: @escaping @Sendable (Plane, Instant) -> Void) {
        commands.withLock { $0.append(body) }
        signal()
    }

    /// What `body` reads from the plane on the loop thread (a sample for metrics or status), at the start of the
    /// next batch.
    public func sample<Value: Sendable>(_ body: @escaping @Sendable (Plane, Instant) -> Value) async -> Value {
        await withCheckedContinuation { continuation in
            execute { plane, now in continuation.resume(returning: body(plane, now)) }
        }
    }

    /// Swaps the UDP sockets for new ones from `make` on the loop thread, before the commands queued after this
    /// one: a reset needs new ports, since relays key their allocations by the 3-tuple (spec `snownet.md` §1.9).
    /// If `make` throws or makes none, the old sockets stay, the failure is counted and `failed` gets the error
    /// (on the loop thread).
    public func replaceSockets(_ make: @escaping @Sendable () throws -> [UdpSocket],
                               failed: @escaping @Sendable (any Error) -> Void = { _ in }) {
        commands.withLock { $0.append { [unowned self] _, _ in self.swapSockets(make, failed: failed) } }
        signal()
    }

    /// Why ``replaceSockets(_:failed:)`` kept the old sockets when `make` threw nothing.
    public struct NoSockets: Error, CustomStringConvertible {
        public var description: String { "no new UDP sockets were made" }
    }

    /// Ends ``run()`` after the batch in progress.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        signal()
    }

    /// Runs batches until ``stop()``; blocks the calling thread.
    public func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 8)
        while !stopping.load(ordering: .acquiring) {
            let timeout = MonotonicClock.milliseconds(until: plane.pollTimeout(), from: MonotonicClock.now())
            let ready = epoll_wait(epoll, &events, Int32(events.count), timeout)
            let now = MonotonicClock.now()
            if ready > 0 {
                for event in events[0..<Int(ready)] {
                    guard event.data.u64 < RelayStreamSet.tokenBase else {
                        relayStreams.handle(token: event.data.u64, events: event.events, now: now) { deliverFromStream($1, relay: $0, now: now) }
                        continue
                    }
                    handle(source: Int(event.data.u64), now: now)
                }
            }
            if let deadline = plane.pollTimeout(), deadline <= now { plane.handleTimeout(now: now) }
            drainPlane(now: now)
            flush()
            afterBatch(plane, now)
            drainPlane(now: now)
            flush()
            relayStreams.flush(now: now)
            flushTun()
            tally.relayStreamsOpened = relayStreams.opened
            tally.relayStreamFailures = relayStreams.failures
            tally.batches += 1
            let snapshot = tally
            counters.withLock { $0 = snapshot }
        }
    }

    // MARK: One batch

    private func handle(source: Int, now: Instant) {
        switch source {
        case 0:
            var value: UInt64 = 0
            _ = read(wakeup, &value, 8)
            for command in commands.withLock({ pending in defer { pending.removeAll() }; return pending }) { command(plane, now) }
        case 1:
            readTun(now: now)
        default:
            readSocket(source - 2, now: now)
        }
    }

    private func readTun(now: Instant) {
        if let tunFrame {
            readTunFrames(tunFrame, now: now)
            return
        }
        for _ in 0..<Self.batchLimit {
            let buffer = spare ?? pool.take()
            spare = nil
            guard let count = try? tun.read(into: buffer.bytes), count > 0 else {
                spare = buffer
                return
            }
            tally.tunFramesRead += 1
            handleTunPacket(consume buffer, count: count, now: now)
        }
    }

    /// Reads frames from a device with offloads: each may hold dozens of TCP segments to cut apart.
    private func readTunFrames(_ frame: UnsafeMutableRawBufferPointer, now: Instant) {
        for _ in 0..<Self.batchLimit {
            guard let count = try? tun.read(into: frame), count > 0 else { return }
            tally.tunFramesRead += 1
            guard count > VirtioNetHeader.size else {
                tally.malformedTunPackets += 1
                continue
            }
            let header = VirtioNetHeader(reading: UnsafeRawBufferPointer(frame))
            let packet = UnsafeMutableRawBufferPointer(rebasing: frame[VirtioNetHeader.size..<count])
            do {
                try TunFrameSplitter.split(packet, header: header, pool: pool) { buffer, count in
                    handleTunPacket(consume buffer, count: count, now: now)
                }
            } catch {
                tally.malformedTunPackets += 1
            }
        }
    }

    private func handleTunPacket(_ buffer: consuming PacketBuffer, count: Int, now: Instant) {
        tally.tunPacketsRead += 1
        guard var packet = try? IpPacket(buffer: copy buffer, count: count) else {
            tally.malformedTunPackets += 1
            spare = buffer
            return
        }
        _ = consume buffer  // the packet holds the only reference, so the pool takes the buffer back
        do {
            if let datagram = try plane.handleTunPacket(&packet, into: output, now: now) {
                let bytes = UnsafeRawBufferPointer(rebasing: output[0..<datagram.count])
                if relayStreams.isEmpty || !relayStreams.send(bytes, to: datagram.destination) { enqueue(bytes, to: datagram.destination) }
            }
        } catch {
            tally.refused += 1
        }
        pool.recycle(consume packet)
    }

    private func readSocket(_ index: Int, now: Instant) {
        guard index < sockets.count else { return }  // readiness of a socket replaced earlier in this batch
        let socket = sockets[index]
        for _ in 0..<(Self.batchLimit / receiveBatch.capacity + 1) {
            guard let received = try? socket.receive(into: receiveBatch), received > 0 else { return }
            for datagram in 0..<received {
                guard let source = receiveBatch.source(at: datagram) else { continue }
                // Bound to the wildcard address, the socket learns which of ours each datagram reached: the node's
                // host candidates come from it.
                let local = SocketAddress(ip: receiveBatch.destination(at: datagram) ?? socket.localAddress.ip, port: socket.localAddress.port)
                let bytes = receiveBatch.bytes(at: datagram), size = receiveBatch.segmentSize(at: datagram)
                var offset = 0
                while offset < bytes.count {
                    let segment = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + size)])
                    offset += size
                    tally.datagramsReceived += 1
                    let buffer = pool.take()
                    guard buffer.copy(from: segment) else { continue }
                    do {
                        if let packet = try plane.handleDatagram(local: local, from: source, buffer: consume buffer,
                                                                 count: segment.count, now: now) {
                            writeTun(packet)
                        }
                    } catch {
                        tally.refused += 1
                    }
                }
            }
            if received < receiveBatch.capacity { return }
        }
    }

    private func drainPlane(now: Instant) {
        relayStreams.reconcile(plane, now: now)
        while let transmit = plane.pollTransmit() {
            transmit.payload.withUnsafeBytes { bytes in
                guard transmit.transport.isStream else { return enqueue(bytes, to: transmit.destination) }
                if !relayStreams.send(bytes, to: transmit.destination) { tally.sendFailures += 1 }
            }
        }
        while let packet = plane.pollTunPacket() { writeTun(packet) }
    }

    /// A datagram a relay sent on its stream: to the plane as if it came from the relay's address over UDP.
    private func deliverFromStream(_ datagram: UnsafeRawBufferPointer, relay: SocketAddress, now: Instant) {
        tally.datagramsReceived += 1
        let buffer = pool.take()
        guard buffer.copy(from: datagram) else { return }
        do {
            if let packet = try plane.handleDatagram(local: relay, from: relay, buffer: consume buffer, count: datagram.count, now: now) {
                writeTun(packet)
            }
        } catch {
            tally.refused += 1
        }
    }

    private func writeTun(_ packet: consuming IpPacket) {
        if tun.offloads {
            coalescer.append(packet) { writeTunFrame($0, $1) }
            pool.recycle(consume packet)
            return
        }
        tally.tunFramesWritten += 1
        if (try? packet.withUnsafeBytes { bytes throws(SystemCallError) in try tun.write(bytes) }) == true {
            tally.tunPacketsWritten += 1
        } else {
            tally.tunWriteFailures += 1
        }
        pool.recycle(consume packet)
    }

    /// Writes the super-packets and packets the coalescer still holds (with offloads).
    private func flushTun() {
        guard tun.offloads else { return }
        coalescer.flush { writeTunFrame($0, $1) }
        let counts = coalescer.counts
        tally.tunPacketsWritten = counts.packets - counts.refusedPackets
        tally.tunFramesWritten = counts.writes
        tally.tunWriteFailures = counts.refusedPackets
    }

    private func writeTunFrame(_ header: VirtioNetHeader, _ packet: UnsafeRawBufferPointer) -> Bool {
        (try? tun.write(header: header, packet: packet)) == true
    }

    /// Adds a datagram to the batch of the socket of its address family, sending the batch first when full.
    private func enqueue(_ payload: UnsafeRawBufferPointer, to destination: SocketAddress) {
        guard let index = sockets.firstIndex(where: { $0.localAddress.ip.version == destination.ip.version }) else {
            tally.sendFailures += 1
            return
        }
        if !sendBatches[index].append(payload, to: destination) {
            send(index)
            if !sendBatches[index].append(payload, to: destination) { tally.sendFailures += 1 }
        }
    }

    private func flush() {
        for index in sendBatches.indices where !sendBatches[index].isEmpty { send(index) }
    }

    private func send(_ index: Int) {
        let result = sockets[index].send(sendBatches[index])
        tally.datagramsSent += result.sent
        tally.sendFailures += result.refused.count
        if result.segmentationRefused { tally.segmentationRefusals += 1 }
    }

    private func swapSockets(_ make: () throws -> [UdpSocket], failed: (any Error) -> Void) {
        let fresh: [UdpSocket]
        do {
            fresh = try make()
            guard !fresh.isEmpty else { throw NoSockets() }
        } catch {
            tally.socketReplacementFailures += 1
            failed(error)
            return
        }
        flush()
        for socket in sockets { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, socket.fileDescriptor, nil) }
        for (offset, socket) in fresh.enumerated() {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.u64 = UInt64(2 + offset)
            _ = epoll_ctl(epoll, EPOLL_CTL_ADD, socket.fileDescriptor, &event)
        }
        sockets = fresh
        sendBatches = fresh.map { SendBatch(coalescing: $0.sendOffload) }
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }
}
#endif
