import IpPacket

/// DNS over TCP to the sentinel addresses (spec `tunnel-dns.md` §4.6.8, RFC 1035 §4.2.2, RFC 7766): a small
/// in-memory TCP responder, sans-IO. Segments the OS wrote into the TUN device go in with
/// ``handle(_:now:)``; complete queries come out of ``pollQuery()``; answers go back with
/// ``respond(_:to:now:)``; segments for the TUN device come out of ``pollPacket()``.
///
/// It is a server for short request/response exchanges on a loss-free local link, not a general TCP:
/// in-order data only (anything else is answered with a duplicate ACK so the peer retransmits), go-back-N
/// retransmission of our own data, at most ``connectionsPerAddress`` connections per listening address.
/// A malformed message aborts its connection with RST, as Firezone's server does.
public struct TcpDnsServer {
    /// A query and the connection it must be answered on.
    public struct Query: Hashable, Sendable {
        public var message: DnsMessage
        public var connection: TcpConnectionId
    }

    /// Firezone listens with 10 sockets per sentinel address.
    public static let connectionsPerAddress = 10
    /// Segments carry at most this much of our data (an answer fits a 1280-byte MTU this way).
    public static let maxSegment = 1_200
    static let initialRetransmission: Duration = .milliseconds(500)
    static let maxRetransmissions = 6
    /// A connection nobody uses for this long is dropped without a word.
    static let idleTimeout: Duration = .seconds(120)

    /// Connections accepted and aborted (RST) so far, for metrics.
    public private(set) var acceptedCount = 0
    public private(set) var abortedCount = 0
    var connections: [TcpConnectionId: TcpDnsConnection] = [:]
    private var queries: [Query] = []
    private var packets: [IpPacket] = []
    private var random: any RandomNumberGenerator

    public init(random: some RandomNumberGenerator) {
        self.random = random
    }

    public var connectionCount: Int { connections.count }

    /// Handles one TCP segment addressed to a listening `address:53`. Non-TCP packets are ignored.
    public mutating func handle(_ packet: IpPacket, now: Instant) {
        guard let tcp = packet.tcp else { return }
        let id = TcpConnectionId(local: SocketAddress(ip: packet.destination, port: tcp.destinationPort),
                                 remote: SocketAddress(ip: packet.source, port: tcp.sourcePort))
        let payload = Array(packet.bytes(in: tcp.payloadRange))
        guard var connection = connections[id] else {
            accept(tcp, options: Array(packet.bytes(in: tcp.optionsRange)), id: id, now: now)
            return
        }
        if tcp.flags.contains(.rst) {
            connections[id] = nil
            return
        }
        connection.lastActivity = now
        if tcp.flags.contains(.syn) {
            // A retransmitted SYN: our SYN-ACK was lost.
            if connection.state == .synReceived { emit(connection.synAck(), for: id) }
            connections[id] = connection
            return
        }
        if tcp.flags.contains(.ack) { connection.acknowledge(tcp.acknowledgmentNumber, window: tcp.window, now: now) }
        var messages: [[UInt8]] = []
        if !payload.isEmpty || tcp.flags.contains(.fin) {
            // In order or not, the peer hears where we are: a duplicate ACK asks for what is missing.
            connection.receive(payload, sequence: tcp.sequenceNumber, fin: tcp.flags.contains(.fin))
            do {
                messages = try connection.takeMessages()
            } catch {
                abort(connection, id: id)
                return
            }
            emit(connection.ackOnly(), for: id)
        }
        connection.pendingAnswers += messages.count
        for bytes in messages {
            guard let message = try? DnsMessage(decoding: bytes), !message.flags.isResponse else {
                abort(connection, id: id)
                return
            }
            queries.append(Query(message: message, connection: id))
        }
        flush(&connection, id: id, now: now)
        store(connection, id: id)
    }

    public mutating func pollQuery() -> Query? {
        queries.isEmpty ? nil : queries.removeFirst()
    }

    public mutating func pollPacket() -> IpPacket? {
        packets.isEmpty ? nil : packets.removeFirst()
    }

    /// Writes an answer, length-prefixed, on the connection its query came in on (if it still exists).
    public mutating func respond(_ answer: DnsMessage, to connection: TcpConnectionId, now: Instant) {
        guard var open = connections[connection] else { return }
        open.queue(DnsTcpFraming.frame(answer.encode(maxSize: Int(UInt16.max))))
        open.pendingAnswers = max(0, open.pendingAnswers - 1)
        open.lastActivity = now
        flush(&open, id: connection, now: now)
        store(open, id: connection)
    }

    public mutating func handleTimeout(now: Instant) {
        for (id, var connection) in connections {
            if now - connection.lastActivity >= Self.idleTimeout {
                connections[id] = nil
                continue
            }
            guard let deadline = connection.retransmitAt, now >= deadline else { continue }
            guard connection.retransmissions < Self.maxRetransmissions else {
                abort(connection, id: id)
                continue
            }
            for segment in connection.retransmit(now: now) { emit(segment, for: id) }
            connections[id] = connection
        }
    }

    public func pollTimeout() -> Instant? {
        connections.values.lazy.map { connection in
            let idle = connection.lastActivity + Self.idleTimeout
            return connection.retransmitAt.map { min($0, idle) } ?? idle
        }.min()
    }

    /// Aborts every connection (reset, roaming).
    public mutating func reset() {
        for (id, connection) in connections { abort(connection, id: id) }
    }

    // MARK: Details

    private mutating func accept(_ tcp: TcpHeader, options: [UInt8], id: TcpConnectionId, now: Instant) {
        guard !tcp.flags.contains(.rst) else { return }
        guard tcp.flags.contains(.syn), !tcp.flags.contains(.ack),
              connections.keys.count(where: { $0.local == id.local }) < Self.connectionsPerAddress
        else {
            emit(TcpSegment.reset(answering: tcp), for: id)
            return
        }
        let connection = TcpDnsConnection(initialSequence: UInt32.random(in: 0...UInt32.max, using: &random),
                                          peerSequence: tcp.sequenceNumber, peerWindow: tcp.window,
                                          peerMss: TcpSegment.maximumSegmentSize(in: options), now: now)
        emit(connection.synAck(), for: id)
        connections[id] = connection
        acceptedCount += 1
    }

    private mutating func flush(_ connection: inout TcpDnsConnection, id: TcpConnectionId, now: Instant) {
        for segment in connection.segments(now: now) { emit(segment, for: id) }
    }

    /// Keeps a connection, or forgets it once both sides closed and our FIN was acknowledged.
    private mutating func store(_ connection: TcpDnsConnection, id: TcpConnectionId) {
        connections[id] = connection.isFinished ? nil : connection
    }

    private mutating func abort(_ connection: TcpDnsConnection, id: TcpConnectionId) {
        abortedCount += 1
        emit(connection.reset(), for: id)
        connections[id] = nil
    }

    private mutating func emit(_ segment: TcpSegment, for id: TcpConnectionId) {
        if let packet = segment.packet(from: id.local, to: id.remote) { packets.append(packet) }
    }
}

/// A TCP connection as its two sockets.
public struct TcpConnectionId: Hashable, Sendable, CustomStringConvertible {
    public var local: SocketAddress
    public var remote: SocketAddress

    public init(local: SocketAddress, remote: SocketAddress) {
        self.local = local
        self.remote = remote
    }

    public var description: String { "\(remote) -> \(local)" }
}
