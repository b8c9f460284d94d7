#if canImport(Glibc)
import CLinuxIO
import Glibc
import Logging
import SansIO
import Turn

/// The event loop's streams to relays that UDP cannot reach (``RelayStream``): opened and closed as the plane's
/// ``DataPlane/relayStreams`` say, registered with the loop's epoll, reconnected after a pause when they end while
/// still wanted. Datagrams for a relay with a stream go on it; what it brings back goes to the plane.
final class RelayStreamSet {
    private struct Entry {
        let stream: RelayStream
        let transport: RelayTransport
        let token: UInt64
        var writing = false
        var announced = false
    }

    /// Epoll tokens of streams have this bit set (the loop's own sources are small numbers).
    static let tokenBase: UInt64 = 1 << 32
    /// A stream that ended while still wanted is opened again after 1 s, then 2, 4, … up to 30 s while it keeps
    /// ending before it connects.
    static func reconnectDelay(afterFailures failures: Int) -> Duration {
        .seconds(min(1 << min(failures, 5), 30))
    }

    private var entries: [SocketAddress: Entry] = [:]
    private var addressByToken: [UInt64: SocketAddress] = [:]
    private var retryAt: [SocketAddress: Instant] = [:]
    /// Streams to an address that ended before they connected, in a row.
    private var failuresInARow: [SocketAddress: Int] = [:]
    private var wanted: [SocketAddress: RelayTransport] = [:]
    private var generation = 0
    private var nextToken = tokenBase
    private var tlsContext: TlsContext?
    private let epoll: Int32
    private let firewallMark: UInt32?
    private let logger: Logger?
    private(set) var opened = 0
    private(set) var failures = 0

    init(epoll: Int32, firewallMark: UInt32?, logger: Logger?) {
        self.epoll = epoll
        self.firewallMark = firewallMark
        self.logger = logger
    }

    var isEmpty: Bool { entries.isEmpty }

    /// Follows the plane's wishes when they changed, and reopens streams whose pause is over.
    func reconcile(_ plane: some DataPlane, now: Instant) {
        if plane.relayStreamsGeneration != generation {
            generation = plane.relayStreamsGeneration
            wanted = plane.relayStreams
            for address in entries.keys where wanted[address] != entries[address]?.transport { close(address, reason: "no longer needed") }
            retryAt = retryAt.filter { wanted[$0.key] != nil }
            failuresInARow = failuresInARow.filter { wanted[$0.key] != nil }
            for (address, transport) in wanted where entries[address] == nil && retryAt[address] == nil { open(address, transport) }
        }
        for (address, at) in retryAt where at <= now {
            retryAt[address] = nil
            if let transport = wanted[address] { open(address, transport) }
        }
    }

    /// Queues `payload` on the stream to `destination`, if there is one; false when the datagram is not a stream's.
    func send(_ payload: UnsafeRawBufferPointer, to destination: SocketAddress) -> Bool {
        guard let entry = entries[destination] else { return false }
        entry.stream.send(payload)
        return true
    }

    /// Readiness of a stream: connect completion, bytes to read, room to write. Each datagram that arrived goes to
    /// `deliver` with the relay's address.
    func handle(token: UInt64, events: UInt32, now: Instant, deliver: (SocketAddress, UnsafeRawBufferPointer) -> Void) {
        guard let address = addressByToken[token], let entry = entries[address] else { return }
        if events & EPOLLOUT.rawValue != 0 { entry.stream.handleWritable() }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            entry.stream.handleReadable { deliver(address, $0) }
        }
        settle(address, now: now)
    }

    /// Writes what each stream has queued, and waits for room where the socket is full.
    func flush(now: Instant) {
        for (address, entry) in entries {
            if entry.stream.state == .established, entry.stream.wantsToWrite { entry.stream.handleWritable() }
            settle(address, now: now)
        }
    }

    /// Announces a stream that connected, replaces one that ended, and asks epoll for writability only while needed.
    private func settle(_ address: SocketAddress, now: Instant) {
        guard var entry = entries[address] else { return }
        switch entry.stream.state {
        case .closed(let error):
            failures += 1
            close(address, reason: "\(error)")
            let inARow = entry.announced ? 0 : failuresInARow[address, default: 0] + 1
            failuresInARow[address] = inARow
            retryAt[address] = now + Self.reconnectDelay(afterFailures: inARow)
            return
        case .established where !entry.announced:
            entry.announced = true
            failuresInARow[address] = nil
            logger?.info("Connected to relay over \(entry.transport)", metadata: ["address": "\(address)"])
        default:
            break
        }
        let writing = entry.stream.wantsToWrite
        if writing != entry.writing {
            entry.writing = writing
            register(entry.stream.fileDescriptor, token: entry.token, writing: writing, operation: EPOLL_CTL_MOD)
        }
        entries[address] = entry
    }

    private func open(_ address: SocketAddress, _ transport: RelayTransport) {
        let kind: RelayStream.Transport
        do {
            switch transport {
            case .udp: return
            case .tcp: kind = .tcp
            case .tls(let serverName):
                let context = try tlsContext ?? TlsContext.client()
                tlsContext = context
                kind = .tls(serverName: serverName, context: context)
            }
            let stream = try RelayStream(connectingTo: address, transport: kind, firewallMark: firewallMark)
            let token = nextToken
            nextToken += 1
            entries[address] = Entry(stream: stream, transport: transport, token: token, writing: true)
            addressByToken[token] = address
            register(stream.fileDescriptor, token: token, writing: true, operation: EPOLL_CTL_ADD)
            opened += 1
            logger?.debug("Connecting to relay", metadata: ["address": "\(address)", "transport": "\(transport)"])
        } catch {
            failures += 1
            logger?.info("Cannot reach relay over \(transport)", metadata: ["address": "\(address)", "error": "\(error)"])
        }
    }

    private func close(_ address: SocketAddress, reason: String) {
        guard let entry = entries.removeValue(forKey: address) else { return }
        addressByToken[entry.token] = nil
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, entry.stream.fileDescriptor, nil)
        logger?.info("Disconnected from relay over \(entry.transport)", metadata: ["address": "\(address)", "reason": "\(reason)"])
    }

    private func register(_ fd: Int32, token: UInt64, writing: Bool, operation: Int32) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (writing ? EPOLLOUT.rawValue : 0)
        event.data.u64 = token
        _ = epoll_ctl(epoll, operation, fd, &event)
    }
}
#endif
