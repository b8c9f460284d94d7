import Ice
import Noise
import SansIO
import Turn

/// Firezone's snownet in Swift (spec `snownet.md` §1): one WireGuard key pair, one connection per peer (an ICE
/// agent and a WireGuard tunnel), and the TURN allocations on every relay, shared by all connections.
///
/// Sans-IO: every input carries the time, outputs are values the IO layer executes. After any input, drain
/// ``pollTransmit()`` and ``pollEvent()``, then call ``handleTimeout(now:)`` at ``pollTimeout()``.
///
/// ```swift
/// let node = Node<GatewayId>(role: .client, privateKey: key, now: now, unixTimeNanoseconds: unixNow)
/// node.updateRelays(removing: [], adding: relays, now: now)
/// try node.upsertConnection(gateway, remoteKey: key, presharedKey: psk, local: mine, remote: theirs, now: now)
/// node.addRemoteCandidate(gateway, candidate, now: now)
/// if let datagram = try node.encapsulate(gateway, packet: packet, into: buffer, now: now) { send(datagram) }
/// if let (peer, range) = try node.decapsulate(local: local, from: from, buffer: buffer, count: n, now: now) { … }
/// ```
public final class Node<PeerId: Hashable & Sendable> {
    public let role: NodeRole
    /// The node's WireGuard identity; a new one after every ``reset(now:)``.
    public private(set) var identity: WireGuardIdentity
    /// Counters of dropped and refused input.
    public internal(set) var statistics = NodeStatistics()
    /// Receives this node's secrets of every WireGuard handshake message it writes, for a key log that
    /// decrypts captures (``WireGuardSessionSecrets``); `nil`, the default, writes none. Applies to
    /// connections made after it is set.
    public var keyLog: ((WireGuardSessionSecrets) -> Void)?

    let allocations = Allocations()
    /// Relays UDP could not reach, now over a stream, with what the portal gave and the probe that moves them back.
    var relayFallbacks: [String: RelayFallback] = [:]
    /// The relays reached over a stream, by address: their datagrams are relay traffic whatever the port, and what
    /// the node sends them goes on the stream.
    var streamRelays: [SocketAddress: RelayTransport] = [:]
    /// BINDINGs over UDP to relays on a stream, asking whether UDP works again: sent over UDP whatever the address.
    var udpProbes: [NodeTransmit] = []
    /// Counts changes of ``relayStreams``, so the IO layer looks at them only when they changed.
    public internal(set) var relayStreamsGeneration = 0
    var connections: [PeerId: Connection<PeerId>] = [:]
    var peerByIndex: [UInt32: PeerId] = [:]
    var recentlyClosed: [(peer: PeerId, at: Instant)] = []
    var indices: SessionIndexAllocator
    var random: SplitMix64
    var transmits: [NodeTransmit] = []
    var events: [NodeEvent<PeerId>] = []
    var reports: [TunnelReport] = []
    /// When the latest "under load" line went out, and the cookie replies counted then: one line per
    /// ``handshakeLoadReportInterval`` while initiations flood in, never one per initiation.
    var handshakeLoadReport: (at: Instant, cookieReplies: Int)?
    let timeAnchor: Instant
    let unixNanosecondsAtAnchor: Int64
    /// Room for one message of a tunnel's control path (handshakes, keepalives, flushed packets) plus a
    /// ChannelData header; allocated once.
    let scratch: UnsafeMutableRawBufferPointer

    static var scratchCapacity: Int { 2048 }
    static var recentlyClosedMemory: Duration { .seconds(5) }
    static var reportCapacity: Int { 1024 }
    static var handshakeLoadReportInterval: Duration { .seconds(10) }

    /// - Parameters:
    ///   - privateKey: the node's static key; `reset` replaces it with one drawn from `random`.
    ///   - now, unixTimeNanoseconds: the same moment on both clocks, the anchor of WireGuard's timestamps.
    ///   - random: session indices, relay choice, ICE tie-breakers, WireGuard ephemerals and jitter.
    public init(role: NodeRole, privateKey: SecretKey, now: Instant, unixTimeNanoseconds: Int64,
                random: any RandomNumberGenerator = SystemRandomNumberGenerator()) {
        var base = random
        self.random = SplitMix64(seed: base.next())
        self.role = role
        identity = WireGuardIdentity(privateKey: privateKey)
        indices = SessionIndexAllocator(using: &self.random)
        timeAnchor = now
        unixNanosecondsAtAnchor = unixTimeNanoseconds
        scratch = .allocate(byteCount: Self.scratchCapacity, alignment: 16)
    }

    deinit {
        scratch.deallocate()
    }

    public var publicKey: PublicKey { identity.publicKey }
    public var connectionCount: Int { connections.count }
    /// The peers with a connection.
    public var peerIds: [PeerId] { Array(connections.keys) }

    /// The nominated path of a connection, or `nil` while it is connecting (or unknown).
    public func path(to peer: PeerId) -> PeerSocket? {
        connections[peer]?.socket
    }

    /// The peer a WireGuard public key belongs to.
    public func peer(withKey key: PublicKey) -> PeerId? {
        connections.values.first { $0.tunnel.remotePublicKey == key }?.peer
    }

    // MARK: Connections

    /// Creates a connection, or keeps the existing one when the ICE credentials, peer key and preshared key
    /// are unchanged (spec §1.5): then its candidates are signalled again and a client rolls the WireGuard
    /// session (at most every 20 s).
    public func upsertConnection(
        _ peer: PeerId, remoteKey: PublicKey, presharedKey: SecretKey, local: IceCredentials, remote: IceCredentials,
        now: Instant
    ) throws(NodeError) {
        if let existing = connections[peer],
           existing.matches(remoteKey: remoteKey, presharedKey: presharedKey, local: local, remote: remote) {
            report(.info, "Reusing existing connection", peer)
            existing.markActivity(now: now)
            for candidate in existing.agent.localCandidates where candidate.kind != .peerReflexive { signalLocal(candidate, to: peer) }
            seedLocalCandidates(existing)
            existing.initiateDebouncedHandshake(now: now)
            drainTunnel(existing, now: now)
            return
        }
        guard let relay = sampleRelay() else { throw .noTurnServers }
        guard let index = nextConnectionIndex() else { throw .tooManyPeers }
        let old = connections.removeValue(forKey: peer)
        report(.info, old == nil ? "Creating new connection" : "Replacing existing connection", peer,
               ["index": "\(index)", "relay": relay])
        if let old {
            peerByIndex[old.index] = nil
            // The peer started over (new credentials): perhaps because our path through the relay broke.
            probeRelay(of: old, now: now)
        }
        let agent = IceAgent(controlling: role.isControlling, local: local, remote: remote,
                             timings: role.defaultTimings, random: random.split())
        let tunnel = WireGuardTunnel(
            identity: identity, remotePublicKey: remoteKey, presharedKey: presharedKey, connectionIndex: index,
            now: now, unixTimeNanoseconds: unixNanosecondsAtAnchor + (now - timeAnchor).totalNanoseconds,
            random: random.split())
        tunnel.keyLog = keyLog
        let connection = Connection(peer: peer, index: index, agent: agent, tunnel: tunnel, presharedKey: presharedKey,
                                    relay: relay, role: role, now: now)
        connections[peer] = connection
        peerByIndex[index] = peer
        seedLocalCandidates(connection)
    }

    /// A candidate the peer signalled, plus at most two optimistic ones derived from all of them (spec §2.4:
    /// a port-forwarded listen port behind a symmetric NAT still gets a direct path).
    public func addRemoteCandidate(_ peer: PeerId, _ candidate: IceCandidate, now: Instant) {
        guard let connection = connections[peer] else { return }
        connection.agent.addRemoteCandidate(candidate)
        for optimistic in OptimisticCandidates.derive(from: connection.agent.remoteCandidates) {
            connection.agent.addRemoteCandidate(optimistic)
        }
        connection.hasRemoteCandidates = true
        report(.debug, "Received remote candidate", peer, ["candidate": "\(candidate.kind.rawValue) \(candidate.address)"])
        if candidate.kind != .host { connection.markActivity(now: now) }
        drainAgent(connection, now: now)
    }

    /// A candidate the peer invalidated.
    public func removeRemoteCandidate(_ peer: PeerId, _ candidate: IceCandidate, now: Instant) {
        guard let connection = connections[peer] else { return }
        connection.agent.invalidateRemoteCandidate(address: candidate.address)
        connection.markActivity(now: now)
        drainAgent(connection, now: now)
    }

    /// Closes a connection gracefully (spec §1.8): if it had a path and a session that can still send, `goodbye`
    /// (a p2p control packet) is encrypted and sent once on it; ``NodeEvent/connectionClosed(_:)`` is emitted.
    public func closeConnection(_ peer: PeerId, goodbye: UnsafeRawBufferPointer, now: Instant) {
        guard let connection = forget(peer, now: now) else { return }
        guard let socket = connection.socket else {
            report(.info, "Connection closed during ICE", peer)
            return
        }
        events.append(.connectionClosed(peer))
        // Only on a session that can still send: otherwise encapsulate would queue the Goodbye and write a
        // handshake initiation, whose answer would then arrive for a connection that is gone.
        let body = UnsafeMutableRawBufferPointer(rebasing: scratch[4...])
        guard connection.tunnel.canSendWithoutHandshake(at: now), goodbye.count + 36 <= scratch.count,
              case .writeToNetwork(let count) = connection.tunnel.encapsulate(goodbye, into: body, now: now)
        else {
            report(.info, "Connection closed proactively (no session to send goodbye)", peer)
            return
        }
        send(UnsafeRawBufferPointer(rebasing: body[0..<count]), on: socket, now: now)
        report(.info, "Connection closed proactively (sent goodbye)", peer)
    }

    /// Closes every connection gracefully.
    public func closeAll(goodbye: UnsafeRawBufferPointer, now: Instant) {
        for peer in Array(connections.keys) { closeConnection(peer, goodbye: goodbye, now: now) }
    }

    /// Drops a connection's state without a word (used when the peer said goodbye).
    public func removeConnection(_ peer: PeerId, now: Instant) {
        guard forget(peer, now: now) != nil else { return }
        report(.info, "Connection removed (peer said goodbye)", peer)
    }

    /// Roaming (spec §1.9, §7): every connection is dropped (``NodeEvent/connectionClosed(_:)`` for each),
    /// queued output discarded, a new key pair generated, and every allocation started over with the same
    /// credentials (#14301), from the sockets the caller rebinds. The caller then reconnects to the portal
    /// with the new key.
    public func reset(now: Instant) {
        allocations.restartAll(now: now) { random.split() }
        transmits.removeAll()
        events.removeAll()
        report(.info, "Resetting node", ["connections": "\(connections.count)", "relays": "\(allocations.entries.count)"])
        for peer in connections.keys { events.append(.connectionClosed(peer)) }
        connections.removeAll()
        peerByIndex.removeAll()
        var seed = [UInt8](repeating: 0, count: 32)
        for index in seed.indices { seed[index] = UInt8.random(in: 0...255, using: &random) }
        if let key = SecretKey(bytes: seed) { identity = WireGuardIdentity(privateKey: key) }
    }

    // MARK: Relays

    /// Applies the portal's relay changes (spec §3.7): removed relays' candidates are invalidated on every
    /// connection, new or changed ones allocate, and every other known relay is probed. Connections whose
    /// relay was removed move to another one at once (spec §3.10).
    public func updateRelays(removing removed: [String], adding added: [RelayDescription], now: Instant) {
        for id in removed {
            relayFallbacks[id] = nil
            guard let allocation = allocations.allocation(id: id) else { continue }
            invalidateRelayCandidates(of: allocation)
            allocations.remove(id: id)
            report(.info, "Removed TURN server", ["rid": id, "address": allocation.server.addresses.map(\.description).joined(separator: ", ")])
        }
        let addedIds = Set(added.map(\.id))
        for (id, allocation) in allocations.entries where !addedIds.contains(id) {
            allocation.refresh(now: now)
        }
        for relay in added {
            if keepOnStream(relay, now: now) { continue }
            let previous = allocations.allocation(id: relay.id)
            let result = allocations.upsert(id: relay.id, server: relay.server, credentials: relay.credentials,
                                            now: now, random: random.split())
            if result == .replaced, let previous { invalidateRelayCandidates(of: previous) }
            switch result {
            case .added: report(.info, "Added new TURN server", ["rid": relay.id, "address": relay.server.addresses.map(\.description).joined(separator: ", ")])
            case .replaced: report(.info, "Replaced TURN server", ["rid": relay.id, "address": relay.server.addresses.map(\.description).joined(separator: ", ")])
            case .skipped: report(.debug, "Skipping known TURN server", ["rid": relay.id, "address": relay.server.addresses.map(\.description).joined(separator: ", ")])
            }
        }
        replaceLostRelays(now: now)
        updateStreamRelays()
    }

    // MARK: Outputs

    /// The next datagram to send: relay control first, then ICE, WireGuard control and flushed packets.
    public func pollTransmit() -> NodeTransmit? {
        for (_, allocation) in allocations.entries {
            if let transmit = allocation.pollTransmit() {
                return NodeTransmit(source: nil, destination: transmit.destination, payload: transmit.payload,
                                    transport: allocation.server.transport)
            }
        }
        if !udpProbes.isEmpty { return udpProbes.removeFirst() }
        guard !transmits.isEmpty else { return nil }
        var transmit = transmits.removeFirst()
        if !streamRelays.isEmpty, transmit.source == nil, let transport = streamRelays[transmit.destination] { transmit.transport = transport }
        return transmit
    }

    public func pollEvent() -> NodeEvent<PeerId>? {
        events.isEmpty ? nil : events.removeFirst()
    }

    /// The next line for the app's log (connections, paths, relays).
    public func pollReport() -> TunnelReport? {
        reports.isEmpty ? nil : reports.removeFirst()
    }

    /// The field naming a peer in reports: a gateway's peers are clients (`cid`), a client's gateways (`gid`).
    var peerField: String { role == .client ? "gid" : "cid" }

    func report(_ level: TunnelReport.Level, _ message: String, _ peer: PeerId, _ fields: [String: String] = [:]) {
        report(level, message, fields.merging([peerField: "\(peer)"]) { $1 })
    }

    /// Under a flood of handshake initiations, a line now and then: how many were answered with a cookie reply.
    func reportHandshakeLoad(now: Instant) {
        if let last = handshakeLoadReport, now - last.at < Self.handshakeLoadReportInterval { return }
        let since = statistics.cookieRepliesSent - (handshakeLoadReport?.cookieReplies ?? 0)
        handshakeLoadReport = (now, statistics.cookieRepliesSent)
        report(.info, "Under load: answering handshake initiations with cookie replies",
               ["cookie_replies": "\(since)", "cookie_replies_total": "\(statistics.cookieRepliesSent)"])
    }

    func report(_ level: TunnelReport.Level, _ message: String, _ fields: [String: String]) {
        // Bounded for callers that never read reports (replays, simulations): the oldest go first.
        if reports.count >= Self.reportCapacity { reports.removeFirst() }
        reports.append(TunnelReport(level, message, fields))
    }

    // MARK: Details

    /// Removes a connection and its index; remembers it for 5 s for clearer errors.
    @discardableResult
    func forget(_ peer: PeerId, now: Instant) -> Connection<PeerId>? {
        guard let connection = connections.removeValue(forKey: peer) else { return nil }
        peerByIndex[connection.index] = nil
        recentlyClosed.append((peer, now))
        return connection
    }

    func unknownConnection(_ peer: PeerId) -> NodeError {
        .unknownConnection(recentlyDisconnected: recentlyClosed.contains { $0.peer == peer })
    }

    /// A 24-bit index no live connection uses.
    func nextConnectionIndex() -> UInt32? {
        while let index = indices.next() {
            if peerByIndex[index] == nil { return index }
        }
        return nil
    }

    /// Uniform over all known relays, allocated or not (spec §3.7 `sample`).
    func sampleRelay() -> String? {
        allocations.entries.randomElement(using: &random)?.id
    }
}
