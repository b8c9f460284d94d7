import Dns
import DnsNat
import IpPacket
import P2pControl
import PortalMessages
import SansIO

extension ClientState {
    /// Handles a packet the OS wrote into the TUN device (spec §4.4): pre-checks, route selection, then
    /// encryption to the resource's gateway into `output`. Returns the datagram to send, or `nil` when the
    /// packet was dropped (counted), buffered behind a connection intent, or buffered while ICE runs.
    public func handleTunPacket(
        _ packet: IpPacket, into output: UnsafeMutableRawBufferPointer, now: Instant
    ) throws(TunnelError) -> EncryptedDatagram? {
        let destination = packet.destination
        guard destination != Self.igmp, destination != Self.allRouters else { return drop(.multicast) }
        guard let config = tunConfig else { return drop(.unconfigured) }
        guard packet.source == .v4(config.ipv4) || packet.source == .v6(config.ipv6) else { return drop(.badSource) }
        if DnsSentinels.isSentinel(destination) {
            if packet.isUdp, try handleDnsQuery(packet, now: now) { return nil }
            if packet.isTcp, try handleTcpDnsSegment(packet, now: now) { return nil }
        }
        if AddressPlan.isTunnel(destination) {
            guard let gateway = peerByTunnelIp[destination] else { return drop(.unknownPeer) }
            return try encapsulate(packet, to: gateway, into: output, now: now)
        }
        if ProxyIpAllocator.isProxyIp(destination), let (domain, candidates) = dns.stub.resolveProxyIp(destination) {
            guard let resource = candidates.lazy.map(\.id).first(where: { resources[$0] != nil })
            else { return drop(.unknownResource) }
            guard let gateway = authorized[resource], peers[gateway] != nil else {
                requestFlow(for: resource, buffering: packet, now: now)
                return nil
            }
            guard try throughDnsResourceNat(packet, domain: domain, resource: resource, gateway: gateway, now: now) else { return nil }
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
    ) throws(TunnelError) -> IpPacket? {
        let decrypted: (peer: GatewayId, packet: IpPacket)?
        do {
            decrypted = try node.decapsulatePacket(local: local, from: source, buffer: buffer, count: count, now: now)
        } catch {
            if case .packet = error { statistics.malformed += 1 }
            throw error
        }
        guard let (gateway, packet) = decrypted else { return nil }
        if packet.isP2pControl {
            switch try? P2pControlEvent(packet) {
            case .goodbye:
                node.removeConnection(gateway, now: now)
                cleanUp(gateway)
            case .domainStatus(let update):
                for released in dnsNat.domainStatus(update, from: gateway) { sendToGateway(released, gateway: gateway, now: now) }
            case .assignedIps, nil:
                break
            }
            return nil
        }
        if try consumeInTunnelDnsAnswer(packet, now: now) { return nil }
        if packet.isTcp, !tcpDnsClient.isEmpty, tcpDnsClient.handle(packet, now: now) {
            drainTcpDnsClient(now: now)
            return nil
        }
        guard peers[gateway]?.allows(source: packet.source) == true else { return drop(.notAllowed) }
        return packet
    }

    // MARK: Details

    static let igmp = IpAddress("224.0.0.22")!
    static let allRouters = IpAddress("ff02::2")!

    /// The client side of DNS-resource NAT (spec §4.8): the first packet for a domain on a gateway sends
    /// AssignedIps and waits for DomainStatus; `true` when the packet may go on now.
    private func throughDnsResourceNat(
        _ packet: IpPacket, domain: DnsName, resource: ResourceId, gateway: GatewayId, now: Instant
    ) throws(TunnelError) -> Bool {
        let key = ClientDnsResourceNat<GatewayId>.Key(gateway: gateway, domain: domain, resource: resource)
        let buffered = { (try? IpPacket(copying: packet.bytes)).map { [$0] } ?? [] }
        switch dnsNat.state(of: key) {
        case nil, .recreating(shouldBuffer: true)?:
            requestNat(key, buffering: buffered(), now: now)
            return false
        case .recreating(shouldBuffer: false)?:
            requestNat(key, buffering: [], now: now)
            return true
        case .pending(_, let shouldBuffer)?:
            let outgoing = dnsNat.outgoing(shouldBuffer ? (buffered().first ?? packet) : packet, for: key, now: now)
            if let assigned = outgoing.assignedIps { sendToGateway(assigned, gateway: gateway, now: now) }
            return outgoing.passThrough
        case .confirmed?, .failed?:
            return true
        }
    }

    /// Sends AssignedIps for the domain's proxy IPs, which the gateway may then answer from.
    private func requestNat(_ key: ClientDnsResourceNat<GatewayId>.Key, buffering packets: [IpPacket], now: Instant) {
        let proxyIps = dns.stub.allocator.records[key.domain] ?? []
        peers[key.gateway]?.allow(proxyIps.compactMap { IpNetwork(address: $0, prefixLength: $0.version == .v4 ? 32 : 128) },
                                  for: key.resource)
        guard let assigned = try? dnsNat.update(key, proxyIps: proxyIps, packets: packets, now: now) else { return }
        sendToGateway(assigned, gateway: key.gateway, now: now)
    }

    /// A packet buffered behind a connection intent, sent through the normal path once the flow exists.
    func resend(_ packet: IpPacket, now: Instant) {
        guard let datagram = try? handleTunPacket(packet, into: scratch, now: now) else { return }
        node.transmits.append(NodeTransmit(source: datagram.source, destination: datagram.destination,
                                           payload: Array(scratch[0..<datagram.count])))
    }

    /// Longest CIDR match, then the Internet resource (spec §4.4.2).
    func resource(for destination: IpAddress) -> ResourceId? {
        if let match = activeCidrs.first(where: { $0.network.contains(destination) }) { return match.resource }
        return internetResourceId
    }

    /// Buffers the packet with the resource's intent and asks the portal for a flow, at most every 2 s and
    /// only when a packet arrives (spec §4.4.4).
    func requestFlow(for resource: ResourceId, buffering packet: IpPacket?, now: Instant) {
        var pending = pendingFlows[resource] ?? PendingFlow(lastIntent: now - .seconds(10))
        if let packet, let copy = try? IpPacket(copying: packet.bytes) {
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
    ) throws(TunnelError) -> EncryptedDatagram? {
        do {
            return try packet.withUnsafeBytes { bytes throws(NodeError) in
                try node.encapsulate(gateway, packet: bytes, into: output, now: now)
            }
        } catch .unknownConnection {
            return drop(.notConnected)
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
