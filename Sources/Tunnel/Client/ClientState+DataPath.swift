import DnsNat
import IpPacket
import PortalMessages
import SansIO

extension ClientState {
    /// Handles a packet the OS wrote into the TUN device (spec §4.4): pre-checks, route selection, then
    /// encryption to the resource's gateway into `output`. Returns the datagram to send, or `nil` when the
    /// packet was dropped (counted), buffered behind a connection intent, or buffered while ICE runs.
    public func handleTunPacket(
        _ packet: IpPacket, into output: UnsafeMutableRawBufferPointer, now: Instant
    ) throws(ClientError) -> EncryptedDatagram? {
        let destination = packet.destination
        guard destination != Self.igmp, destination != Self.allRouters else { return drop(.multicast) }
        guard let config = tunConfig else { return drop(.unconfigured) }
        guard packet.source == .v4(config.ipv4) || packet.source == .v6(config.ipv6) else { return drop(.badSource) }
        if AddressPlan.isTunnel(destination) {
            guard let gateway = peerByTunnelIp[destination] else { return drop(.unknownPeer) }
            return try encapsulate(packet, to: gateway, into: output, now: now)
        }
        guard let resource = resource(for: destination) else { return drop(.unknownResource) }
        guard let gateway = authorized[resource], peers[gateway] != nil else {
            requestFlow(for: resource, buffering: packet, now: now)
            return nil
        }
        return try encapsulate(packet, to: gateway, into: output, now: now)
    }

    /// Handles a datagram from the network in `buffer` (decrypted in place). Returns the packet for the TUN
    /// device, or `nil` when it was control traffic or dropped (counted).
    public func handleDatagram(
        local: SocketAddress, from source: SocketAddress, buffer: PacketBuffer, count: Int, now: Instant
    ) throws(ClientError) -> IpPacket? {
        let decrypted: (peer: GatewayId, packet: Range<Int>)?
        do {
            decrypted = try node.decapsulate(local: local, from: source, buffer: buffer.bytes, count: count, now: now)
        } catch {
            throw .node(error)
        }
        guard let (gateway, range) = decrypted else { return nil }
        let packet: IpPacket
        do {
            packet = try IpPacket(buffer: buffer, offset: range.lowerBound, count: range.count)
        } catch {
            statistics.malformed += 1
            throw .packet(error)
        }
        if packet.isP2pControl {
            if (try? P2pControlEvent(packet)) == .goodbye {
                node.removeConnection(gateway, now: now)
                cleanUp(gateway)
            }
            return nil
        }
        guard peers[gateway]?.allows(source: packet.source) == true else { return drop(.notAllowed) }
        return packet
    }

    // MARK: Details

    static let igmp = IpAddress("224.0.0.22")!
    static let allRouters = IpAddress("ff02::2")!

    /// Longest CIDR match, then the Internet resource (spec §4.4.2; DNS proxy IPs are not routed yet).
    func resource(for destination: IpAddress) -> ResourceId? {
        if let match = activeCidrs.first(where: { $0.network.contains(destination) }) { return match.resource }
        return internetResourceId
    }

    /// Buffers the packet with the resource's intent and asks the portal for a flow, at most every 2 s and
    /// only when a packet arrives (spec §4.4.4).
    private func requestFlow(for resource: ResourceId, buffering packet: IpPacket, now: Instant) {
        var pending = pendingFlows[resource] ?? PendingFlow(lastIntent: now - .seconds(10))
        if let copy = try? IpPacket(copying: packet.bytes) {
            let dropped = pending.packets.droppedCount
            pending.packets.append(copy)
            if pending.packets.droppedCount > dropped { statistics.count(.bufferFull) }
        }
        if now - pending.lastIntent >= Self.intentInterval {
            pending.lastIntent = now
            portalOutbox.append(.createFlow(CreateFlow(resourceId: resource, connectedGatewayIds: peers.keys.sorted())))
        }
        pendingFlows[resource] = pending
    }

    private func encapsulate(
        _ packet: IpPacket, to gateway: GatewayId, into output: UnsafeMutableRawBufferPointer, now: Instant
    ) throws(ClientError) -> EncryptedDatagram? {
        do {
            return try packet.withUnsafeBytes { bytes throws(NodeError) in
                try node.encapsulate(gateway, packet: bytes, into: output, now: now)
            }
        } catch {
            throw .node(error)
        }
    }

    /// Sends a buffered packet once its flow exists; the node holds it while ICE runs.
    func sendToGateway(_ packet: IpPacket, gateway: GatewayId, now: Instant) {
        guard let datagram = try? encapsulate(packet, to: gateway, into: scratch, now: now) else { return }
        node.transmits.append(NodeTransmit(source: datagram.source, destination: datagram.destination,
                                           payload: Array(scratch[0..<datagram.count])))
    }

    private func drop<T>(_ reason: ClientDrop) -> T? {
        statistics.count(reason)
        return nil
    }
}
