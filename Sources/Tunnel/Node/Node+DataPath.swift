import Ice
import Noise
import SansIO
import Stun
import Turn

extension Node {
    /// Encrypts one IP packet for a peer into `output` (at least the packet plus 36 bytes): the datagram's
    /// bytes start at offset 0. Returns `nil` when the packet was dropped (gateway without a path, relay without
    /// a channel yet) or queued behind a rekeying handshake.
    ///
    /// A client's connection refuses packets with ``NodeError/stillConnecting`` until its first WireGuard
    /// session (``NodeEvent/connectionEstablished(_:)``): the caller keeps them and sends them then, so a packet
    /// waits in one place while a connection is set up.
    ///
    /// Allocation-free once a session exists: the packet is encrypted straight into `output`, leaving room
    /// for the ChannelData header when a relay carries it.
    public func encapsulate(
        _ peer: PeerId, packet: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, now: Instant
    ) throws(NodeError) -> EncryptedDatagram? {
        guard let connection = connections[peer] else { throw unknownConnection(peer) }
        let socket: PeerSocket
        switch connection.state {
        case .failed:
            throw .connectionFailed
        case .connecting:
            guard role == .client else {
                statistics.droppedWithoutPath += 1
                return nil
            }
            throw .stillConnecting
        case .connected(let path, _), .idle(let path):
            guard role == .gateway || connection.announcedEstablished else { throw .stillConnecting }
            socket = path
        }
        connection.markActivity(now: now)
        let relay = socket.ownRelay
        let offset = relay == nil ? 0 : ChannelData.headerLength
        guard output.count > offset else { throw .wireGuard(.outputTooSmall(needed: offset + 1, available: output.count), from: socket.destination) }
        let body = UnsafeMutableRawBufferPointer(rebasing: output[offset...])
        switch connection.tunnel.encapsulate(packet, into: body, now: now) {
        case .writeToNetwork(let count):
            return frame(count: count, in: output, on: socket, relay: relay, now: now)
        case .error(let error):
            throw .wireGuard(error, from: socket.destination)
        case .done, .writeToTunnel:
            return nil
        }
    }

    /// Handles one received UDP datagram of `count` bytes at the start of `buffer` (spec §4.1): relay
    /// control, ChannelData, ICE checks and WireGuard. Returns the peer and where its decrypted IP packet
    /// lies in `buffer`, or `nil` when the datagram was consumed (control traffic) or dropped.
    ///
    /// `buffer` must have room for a 148-byte reply beyond short messages; decryption happens in place.
    public func decapsulate(
        local: SocketAddress, from source: SocketAddress, buffer: UnsafeMutableRawBufferPointer, count: Int,
        now: Instant
    ) throws(NodeError) -> (peer: PeerId, packet: Range<Int>)? {
        let datagram = UnsafeRawBufferPointer(rebasing: buffer[0..<min(count, buffer.count)])
        var offset = 0
        var from = source
        var destination = local
        if source.port == 3478 || (!streamRelays.isEmpty && streamRelays[source] != nil) {
            switch DatagramKind.classify(datagram) {
            case .stun:
                if handleUdpProbeAnswer(datagram, from: source, now: now) { return nil }
                switch allocations.lookup(source) {
                case .connected(let id, let allocation):
                    allocation.handle(Array(datagram), from: source, local: local, now: now)
                    drainAllocation(id: id, allocation, now: now)
                    return nil
                case .disconnected:
                    statistics.fromStaleRelay += 1
                    return nil
                case .unknown:
                    break
                }
            case .channelData:
                switch allocations.lookup(source) {
                case .connected(_, let allocation):
                    guard let (peer, payload) = allocation.decodeChannelData(datagram, from: source, now: now) else {
                        statistics.unboundChannelData += 1
                        return nil
                    }
                    offset = payload.lowerBound
                    from = peer
                    destination = allocation.relayAddresses.first { $0.ip.version == peer.ip.version } ?? local
                    return try decapsulatePeerTraffic(buffer: buffer, offset: offset, count: payload.count,
                                                      local: destination, from: from, now: now)
                case .disconnected:
                    statistics.fromStaleRelay += 1
                    return nil
                case .unknown:
                    break
                }
            case .other:
                break
            }
        }
        return try decapsulatePeerTraffic(buffer: buffer, offset: offset, count: datagram.count,
                                          local: destination, from: from, now: now)
    }

    // MARK: Details

    /// The ICE and WireGuard stages of spec §4.1 for a datagram (or ChannelData payload) at `offset`.
    private func decapsulatePeerTraffic(
        buffer: UnsafeMutableRawBufferPointer, offset: Int, count: Int, local: SocketAddress, from: SocketAddress,
        now: Instant
    ) throws(NodeError) -> (peer: PeerId, packet: Range<Int>)? {
        let region = UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])
        let datagram = UnsafeRawBufferPointer(rebasing: region[0..<count])
        if DatagramKind.classify(datagram) == .stun {
            // Decoded once, not once per agent: with a thousand clients the gateway would otherwise decode every
            // connectivity check a thousand times (GatewayScale in Benchmarks/ measured it).
            guard let message = try? StunMessage(decoding: Array(datagram)) else {
                statistics.unmatchedStun += 1
                return nil
            }
            for connection in connections.values where connection.agent.handle(message, from: from, to: local, now: now) {
                drainAgent(connection, now: now)
                return nil
            }
            statistics.unmatchedStun += 1
            return nil
        }
        let source = endpointKey(from)
        if case .initiation = WireGuardMessage.peek(datagram), try !admitInitiation(
            datagram, source: source, local: local, from: from, output: region, now: now) {
            return nil
        }
        let connection = try owner(of: datagram, from: from)
        let output = connection.tunnel.decapsulate(datagram, from: source, into: region, now: now)
        switch output {
        case .writeToTunnel(let packetOffset, let packetCount):
            connection.markActivity(now: now)
            drainTunnelEvents(connection, now: now)
            let start = offset + packetOffset
            return (connection.peer, start..<start + packetCount)
        case .writeToNetwork(let replyCount):
            let reply = UnsafeRawBufferPointer(rebasing: region[0..<replyCount])
            if let socket = connection.socket {
                send(reply, on: socket, now: now)
            } else {
                connection.bufferWireGuard(Array(reply))
            }
            drainTunnel(connection, now: now)
            return nil
        case .done:
            drainTunnel(connection, now: now)
            return nil
        case .error(let error):
            statistics.refused += 1
            throw .wireGuard(error, from: from)
        }
    }

    /// MAC1 and, under load, MAC2 of an initiation before the Diffie-Hellman that finds its peer (spec §5.6): a
    /// flood costs a MAC per packet and is answered with cookie replies, sent back the way the initiation came.
    /// `false` when the initiation went no further (answered with a cookie reply).
    private func admitInitiation(
        _ datagram: UnsafeRawBufferPointer, source: EndpointKey, local: SocketAddress, from: SocketAddress,
        output: UnsafeMutableRawBufferPointer, now: Instant
    ) throws(NodeError) -> Bool {
        switch identity.screenInitiation(datagram, source: source, now: now, rng: &random, into: output) {
        case .accept:
            return true
        case .badMac1:
            statistics.refused += 1
            throw .wireGuard(.invalidMac, from: from)
        case .cookieReply(let count):
            statistics.cookieRepliesSent += 1
            reportHandshakeLoad(now: now)
            let reply = UnsafeRawBufferPointer(rebasing: output[0..<count])
            if let (relay, _) = allocations.entries.first(where: { $0.allocation.relayAddresses.contains(local) }) {
                send(reply, on: .relayToPeer(relay: relay, destination: from), now: now)
            } else {
                send(reply, on: .peerToPeer(source: local, destination: from), now: now)
            }
            return false
        }
    }

    /// The connection a WireGuard message belongs to: by the initiator's key for initiations, by the
    /// receiver index's top 24 bits for everything else (spec §4.2).
    private func owner(of datagram: UnsafeRawBufferPointer, from: SocketAddress) throws(NodeError) -> Connection<PeerId> {
        guard let message = WireGuardMessage.peek(datagram) else {
            statistics.refused += 1
            throw .notWireGuard(length: datagram.count, from: from)
        }
        switch message {
        case .initiation:
            guard let key = identity.initiatorPublicKey(of: datagram),
                  let connection = connections.values.first(where: { $0.tunnel.remotePublicKey == key })
            else {
                statistics.refused += 1
                throw .unknownPeerKey(from: from)
            }
            return connection
        case .response(_, let receiver), .cookieReply(let receiver), .data(let receiver, _):
            guard let peer = peerByIndex[SessionIndexAllocator.connectionIndex(ofReceiverIndex: receiver)],
                  let connection = connections[peer]
            else {
                statistics.refused += 1
                throw .unknownSessionIndex(receiver, from: from)
            }
            return connection
        }
    }

    /// The tunnel's events: a first session announces the connection, expiry fails it. On the data path
    /// nothing else can be pending.
    func drainTunnelEvents(_ connection: Connection<PeerId>, now: Instant) {
        while let event = connection.tunnel.pollEvent() {
            switch event {
            case .sessionEstablished(let index):
                report(.debug, "WireGuard session established", connection.peer,
                       ["index": "\(index)", "handshakes": "\(connection.tunnel.statistics.handshakesCompleted)"])
                guard !connection.announcedEstablished else { continue }
                connection.announcedEstablished = true
                report(.info, "Connection established", connection.peer, ["path": connection.socket.map { "\($0)" } ?? "none"])
                events.append(.connectionEstablished(connection.peer))
            case .connectionExpired:
                connection.fail(.wireGuardExpired, now: now)
            }
        }
    }

    /// Writes the ChannelData header in front of an encrypted packet when our relay carries it.
    private func frame(count: Int, in output: UnsafeMutableRawBufferPointer, on socket: PeerSocket, relay: String?,
                       now: Instant) -> EncryptedDatagram? {
        switch socket {
        case .peerToPeer(let source, let destination), .peerToRelay(let source, let destination):
            return EncryptedDatagram(source: source, destination: destination, count: count)
        case .relayToPeer(_, let destination), .relayToRelay(_, let destination):
            guard let relay, let allocation = allocations.allocation(id: relay),
                  let framed = allocation.encodeChannelData(to: destination, payloadLength: count, into: output, now: now)
            else {
                statistics.droppedWithoutPath += 1
                return nil
            }
            return EncryptedDatagram(source: nil, destination: framed.destination, count: framed.count)
        }
    }

    /// The address bytes and port, the source a cookie is bound to; built on the stack.
    private func endpointKey(_ address: SocketAddress) -> EndpointKey {
        var storage: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &storage) { raw in
            switch address.ip {
            case .v4(let v4):
                raw.storeBytes(of: v4.value.bigEndian, toByteOffset: 0, as: UInt32.self)
                raw.storeBytes(of: address.port.bigEndian, toByteOffset: 4, as: UInt16.self)
                return EndpointKey(UnsafeRawBufferPointer(rebasing: raw[0..<6]))
            case .v6(let v6):
                raw.storeBytes(of: v6.high.bigEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: v6.low.bigEndian, toByteOffset: 8, as: UInt64.self)
                raw.storeBytes(of: address.port.bigEndian, toByteOffset: 16, as: UInt16.self)
                return EndpointKey(UnsafeRawBufferPointer(rebasing: raw[0..<18]))
            }
        }
    }
}

extension Node {
    /// Encrypts a packet the layer above originates (a control message, an ICMP answer, a DNS message, a packet
    /// that waited for the connection) and queues the datagram for ``pollTransmit()``. Throws and drops like
    /// ``encapsulate(_:packet:into:now:)``.
    public func encapsulateAndQueue(_ peer: PeerId, packet: UnsafeRawBufferPointer, now: Instant) throws(NodeError) {
        guard let datagram = try encapsulate(peer, packet: packet, into: scratch, now: now) else { return }
        transmits.append(NodeTransmit(source: datagram.source, destination: datagram.destination,
                                      payload: Array(scratch[0..<datagram.count])))
    }
}
