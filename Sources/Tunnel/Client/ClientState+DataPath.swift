import Dns
import DnsNat
import IpPacket
import P2pControl
import PortalMessages
import SansIO

extension ClientState {
    /// Handles a packet the OS wrote into the TUN device (spec §4.4): pre-checks, route selection, then
    /// encryption to the resource's gateway into `output`. Returns the datagram to send, or `nil` when the
    /// packet was dropped (counted), answered here (DNS), or kept until its flow or connection exists.
    public func handleTunPacket(
        _ packet: IpPacket, into output: UnsafeMutableRawBufferPointer, now: Instant
    ) throws(TunnelError) -> EncryptedDatagram? {
        guard let gateway = try route(packet, now: now) else { return nil }
        do {
            return try packet.withUnsafeBytes { bytes throws(NodeError) in
                try node.encapsulate(gateway, packet: bytes, into: output, now: now)
            }
        } catch {
            try encapsulationFailed(error, packet: packet, gateway: gateway)
            return nil
        }
    }

    /// Handles a datagram from the network in `buffer` (decrypted in place). Returns the packet for the TUN
    /// device, or `nil` when it was control traffic or dropped (counted).
    public func handleDatagram(
        local: SocketAddress, from source: SocketAddress, buffer: PacketBuffer, count: Int, now: Instant
    ) throws(TunnelError) -> IpPacket? {
        defer { drainNodeEvents(now: now) }
        let decrypted: (peer: GatewayId, packet: IpPacket)?
        do {
            decrypted = try node.decapsulatePacket(local: local, from: source, buffer: buffer, count: count, now: now)
        } catch {
            if case .packet = error { statistics.malformed += 1 }
            throw error
        }
        guard let (gateway, packet) = decrypted else { return nil }
        if packet.isP2pControl {
            handleControl(packet, from: gateway, now: now)
            return nil
        }
        if try consumeInTunnelDnsAnswer(packet, now: now) { return nil }
        if packet.isTcp, !dns.tcpClient.isEmpty, dns.tcpClient.handle(packet, now: now) {
            drainTcpDnsClient(now: now)
            return nil
        }
        guard gateways.allows(source: packet.source, from: gateway) else { return drop(.notAllowed) }
        return packet
    }

    // MARK: Details

    static let igmp = IpAddress("224.0.0.22")!
    static let allRouters = IpAddress("ff02::2")!

    private func handleControl(_ packet: IpPacket, from gateway: GatewayId, now: Instant) {
        switch try? P2pControlEvent(packet) {
        case .goodbye:
            node.removeConnection(gateway, now: now)
            cleanUp(gateway)
        case .domainStatus(let update):
            for released in dnsNat.domainStatus(update, from: gateway) { sendToGateway(released, gateway: gateway, now: now) }
        case .assignedIps, nil:
            break
        }
    }

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
        let proxyIps = dns.resolver.stub.allocator.records[key.domain] ?? []
        gateways.allow(proxyIps.compactMap { IpNetwork(address: $0, prefixLength: $0.version == .v4 ? 32 : 128) },
                       for: key.resource, on: key.gateway)
        guard let assigned = try? dnsNat.update(key, proxyIps: proxyIps, packets: packets, now: now) else { return }
        sendToGateway(assigned, gateway: key.gateway, now: now)
    }

    /// A packet that waited, or one the client made itself (in-tunnel DNS), routed like one from the TUN device.
    func resend(_ packet: IpPacket, now: Instant) {
        guard let gateway = try? route(packet, now: now) else { return }
        sendToGateway(packet, gateway: gateway, now: now)
    }

    /// Sends a packet the client made or kept to a gateway; while the connection is set up it waits like any other.
    func sendToGateway(_ packet: IpPacket, gateway: GatewayId, now: Instant) {
        do {
            try packet.withUnsafeBytes { bytes throws(NodeError) in try node.encapsulateAndQueue(gateway, packet: bytes, now: now) }
        } catch {
            try? encapsulationFailed(error, packet: packet, gateway: gateway)
        }
    }

    /// Keeps the packet until the resource's flow exists and asks the portal for one, at most every 2 s and
    /// only when a packet arrives (spec §4.4.4). A TCP DNS query that must recurse in site asks without a packet.
    func requestFlow(for resource: ResourceId, holding packet: IpPacket?, now: Instant) {
        if let packet, let copy = try? IpPacket(copying: packet.bytes), !pending.hold(copy, until: .flow(resource)) {
            statistics.count(.bufferFull)
        }
        guard pending.flowRequestDue(for: resource, now: now) else { return }
        portalOutbox.append(.createFlow(CreateFlow(resourceId: resource, connectedGatewayIds: gateways.ids)))
    }

    /// The gateway a packet goes to (spec §4.4.1–§4.4.3); `nil` when it was dropped (counted), answered here,
    /// or kept until its resource's flow exists.
    private func route(_ packet: IpPacket, now: Instant) throws(TunnelError) -> GatewayId? {
        let destination = packet.destination
        guard destination != Self.igmp, destination != Self.allRouters else { return drop(.multicast) }
        guard let config = tunConfig else { return drop(.unconfigured) }
        guard packet.source == .v4(config.ipv4) || packet.source == .v6(config.ipv6) else { return drop(.badSource) }
        if DnsSentinels.isSentinel(destination) {
            if packet.isUdp, try handleDnsQuery(packet, now: now) { return nil }
            if packet.isTcp, try handleTcpDnsSegment(packet, now: now) { return nil }
        }
        if AddressPlan.isTunnel(destination) {
            guard let gateway = gateways.gateway(atTunnelAddress: destination) else { return drop(.unknownPeer) }
            return gateway
        }
        if ProxyIpAllocator.isProxyIp(destination), let (domain, candidates) = dns.resolver.stub.resolveProxyIp(destination) {
            guard let resource = candidates.lazy.map(\.id).first(where: { resources[$0] != nil }) else { return drop(.unknownResource) }
            guard let gateway = gateways.gateway(for: resource) else {
                requestFlow(for: resource, holding: packet, now: now)
                return nil
            }
            guard try throughDnsResourceNat(packet, domain: domain, resource: resource, gateway: gateway, now: now) else { return nil }
            return gateway
        }
        guard let resource = resources.resource(for: destination) else { return drop(.unknownResource) }
        guard let gateway = gateways.gateway(for: resource) else {
            requestFlow(for: resource, holding: packet, now: now)
            return nil
        }
        return gateway
    }

    /// A packet the node would not encrypt: kept while the connection is set up, dropped when it is gone,
    /// any other refusal thrown.
    private func encapsulationFailed(_ error: NodeError, packet: IpPacket, gateway: GatewayId) throws(TunnelError) {
        switch error {
        case .stillConnecting:
            if let copy = try? IpPacket(copying: packet.bytes), !pending.hold(copy, until: .connection(gateway)) {
                statistics.count(.bufferFull)
            }
        case .unknownConnection:
            statistics.count(.notConnected)
        default:
            throw .node(error)
        }
    }

    private func drop<T>(_ reason: ClientDrop) -> T? {
        statistics.count(reason)
        return nil
    }
}
