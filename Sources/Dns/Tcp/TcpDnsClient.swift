import IpPacket

/// DNS over TCP *through the tunnel* (spec `tunnel-dns.md` §4.6.8, TCP client): one connection per upstream
/// from our TUN address and a random port in 49152–65535, queries pipelined on it, each with a wire ID unique
/// on the connection (the caller restores the asker's ID). `Asker` is whatever the caller needs to answer the
/// one who asked; it comes back with the answer. Sans-IO
/// like ``TcpDnsServer``: segments out of ``pollPacket()`` go into the tunnel, segments from the upstream go
/// into ``handle(_:now:)``, answers come out of ``pollAnswer()``.
///
/// A connection that is reset, or whose segments go unacknowledged, fails every query on it; a query
/// unanswered for ``timeout`` fails alone. A failure is an answer of `nil` (SERVFAIL for the asker).
public struct TcpDnsClient<Asker> {
    public static var timeout: Duration { .seconds(30) }

    struct Upstream {
        var local: SocketAddress
        var connection: TcpDnsConnection
        /// By wire ID.
        var queries: [UInt16: (asker: Asker, deadline: Instant)] = [:]
        var nextId: UInt16
    }

    private var upstreams: [SocketAddress: Upstream] = [:]
    private var answers: [(Asker, DnsMessage?)] = []
    private var packets: [IpPacket] = []
    private var random: any RandomNumberGenerator

    public init(random: some RandomNumberGenerator) {
        self.random = random
    }

    public var isEmpty: Bool { upstreams.isEmpty }

    /// Sends `query` to `server` from `local`, opening the connection if there is none; its answer comes
    /// back with `asker`.
    public mutating func send(_ query: DnsMessage, asker: Asker, from local: IpAddress, to server: SocketAddress, now: Instant) {
        var upstream = upstreams[server] ?? open(from: local, to: server, now: now)
        var wireId = upstream.nextId
        while upstream.queries[wireId] != nil { wireId &+= 1 }
        upstream.nextId = wireId &+ 1
        var wireQuery = query
        wireQuery.id = wireId
        upstream.queries[wireId] = (asker, now + Self.timeout)
        upstream.connection.queue(DnsTcpFraming.frame(wireQuery.encode()))
        upstream.connection.lastActivity = now
        flush(&upstream, server: server, now: now)
        upstreams[server] = upstream
    }

    /// Takes a segment from the tunnel; `false` when it belongs to none of our connections.
    public mutating func handle(_ packet: IpPacket, now: Instant) -> Bool {
        guard let tcp = packet.tcp else { return false }
        let server = SocketAddress(ip: packet.source, port: tcp.sourcePort)
        guard var upstream = upstreams[server], upstream.local == SocketAddress(ip: packet.destination, port: tcp.destinationPort)
        else { return false }
        if tcp.flags.contains(.rst) {
            fail(upstream, server: server)
            return true
        }
        upstream.connection.lastActivity = now
        if upstream.connection.state == .synSent {
            guard upstream.connection.synAcknowledged(tcp, now: now) else { return true }
            emit(upstream.connection.ackOnly(), upstream: upstream, server: server)
        } else if tcp.flags.contains(.ack) {
            upstream.connection.acknowledge(tcp.acknowledgmentNumber, window: tcp.window, now: now)
        }
        let payload = Array(packet.bytes(in: tcp.payloadRange))
        if !payload.isEmpty || tcp.flags.contains(.fin) {
            upstream.connection.receive(payload, sequence: tcp.sequenceNumber, fin: tcp.flags.contains(.fin))
            emit(upstream.connection.ackOnly(), upstream: upstream, server: server)
            guard let messages = try? upstream.connection.takeMessages() else {
                fail(upstream, server: server)
                return true
            }
            for bytes in messages {
                guard let response = try? DnsMessage(decoding: bytes), response.flags.isResponse,
                      let (asker, _) = upstream.queries.removeValue(forKey: response.id)
                else { continue }
                answers.append((asker, response))
            }
        }
        if upstream.connection.peerFinished {
            // The upstream closed: what is still pending fails; the next query opens a new connection.
            fail(upstream, server: server)
            return true
        }
        flush(&upstream, server: server, now: now)
        upstreams[server] = upstream
        return true
    }

    public mutating func pollAnswer() -> (Asker, DnsMessage?)? {
        answers.isEmpty ? nil : answers.removeFirst()
    }

    public mutating func pollPacket() -> IpPacket? {
        packets.isEmpty ? nil : packets.removeFirst()
    }

    public mutating func handleTimeout(now: Instant) {
        for (server, var upstream) in upstreams {
            for (id, query) in upstream.queries where query.deadline <= now {
                upstream.queries[id] = nil
                answers.append((query.asker, nil))
            }
            if upstream.queries.isEmpty, now - upstream.connection.lastActivity >= TcpDnsServer.idleTimeout {
                emit(upstream.connection.reset(), upstream: upstream, server: server)
                upstreams[server] = nil
                continue
            }
            if let deadline = upstream.connection.retransmitAt, now >= deadline {
                guard upstream.connection.retransmissions < TcpDnsServer.maxRetransmissions else {
                    fail(upstream, server: server)
                    continue
                }
                for segment in upstream.connection.retransmit(now: now) { emit(segment, upstream: upstream, server: server) }
            }
            upstreams[server] = upstream
        }
    }

    public func pollTimeout() -> Instant? {
        upstreams.values.lazy.flatMap { upstream in
            [upstream.connection.retransmitAt, upstream.queries.values.lazy.map(\.deadline).min(),
             upstream.queries.isEmpty ? upstream.connection.lastActivity + TcpDnsServer.idleTimeout : nil].compactMap { $0 }
        }.min()
    }

    /// Resets every connection and fails every pending query (TUN change, roaming).
    public mutating func reset() {
        for (server, upstream) in upstreams {
            emit(upstream.connection.reset(), upstream: upstream, server: server)
            fail(upstream, server: server)
        }
    }

    // MARK: Details

    private mutating func open(from local: IpAddress, to server: SocketAddress, now: Instant) -> Upstream {
        let taken = Set(upstreams.values.map(\.local.port))
        let port = EphemeralPort.pick(using: &random, isTaken: taken.contains)
        let upstream = Upstream(local: SocketAddress(ip: local, port: port),
                                connection: TcpDnsConnection(initialSequence: UInt32.random(in: 0...UInt32.max, using: &random), now: now),
                                nextId: UInt16.random(in: 0...UInt16.max, using: &random))
        emit(upstream.connection.syn(), upstream: upstream, server: server)
        return upstream
    }

    private mutating func flush(_ upstream: inout Upstream, server: SocketAddress, now: Instant) {
        for segment in upstream.connection.segments(now: now) { emit(segment, upstream: upstream, server: server) }
    }

    private mutating func fail(_ upstream: Upstream, server: SocketAddress) {
        for (asker, _) in upstream.queries.values { answers.append((asker, nil)) }
        upstreams[server] = nil
    }

    private mutating func emit(_ segment: TcpSegment, upstream: Upstream, server: SocketAddress) {
        if let packet = segment.packet(from: upstream.local, to: server) { packets.append(packet) }
    }
}
