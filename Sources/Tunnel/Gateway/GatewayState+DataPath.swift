import DnsNat
import IpPacket
import P2pControl
import PortalMessages
import SansIO

extension GatewayState {
    /// Handles a datagram from the network held in `buffer` (decrypted in place). Returns the client's
    /// packet for the TUN device, policy-checked and translated, or `nil` when it was consumed (control
    /// traffic, p2p control messages) or dropped (counted; refusals answered with ICMP through the tunnel).
    public func handleDatagram(
        local: SocketAddress, from source: SocketAddress, buffer: PacketBuffer, count: Int, now: Instant
    ) throws(TunnelError) -> IpPacket? {
        let decrypted: (peer: ClientId, packet: IpPacket)?
        do {
            decrypted = try node.decapsulatePacket(local: local, from: source, buffer: buffer, count: count, now: now)
        } catch {
            if case .packet = error { statistics.malformed += 1 }
            throw error
        }
        guard case (let clientId, var packet)? = decrypted else { return nil }
        if packet.isP2pControl {
            try handleControl(packet, from: clientId, now: now)
            return nil
        }
        guard let client = clients[clientId] else {
            statistics.count(.prohibited)
            answer(packet, to: clientId, with: IpPacket.icmpDestinationUnreachableProhibited, now: now)
            return nil
        }
        return try outbound(&packet, from: client, outer: (source, local), now: now) ? packet : nil
    }

    /// Handles a packet the kernel routed into the TUN device (spec §5.5): reverse NAT, the reply-path filter,
    /// then encryption to the client into `output`. Returns the datagram to send, or `nil` when dropped or
    /// waiting for a path.
    public func handleTunPacket(
        _ packet: inout IpPacket, into output: UnsafeMutableRawBufferPointer, now: Instant
    ) throws(TunnelError) -> EncryptedDatagram? {
        guard let clientId = clientByTunnelIp[packet.destination], let client = clients[clientId] else {
            statistics.count(.notAPeer)
            return nil
        }
        if !isOwnAddress(packet.source) {
            let translation: GatewayNatTable.Inbound
            do {
                translation = try client.dnsNat.inbound(&packet, now: now)
            } catch {
                statistics.malformed += 1
                throw .packet(error)
            }
            if translation == .expiredSession {
                statistics.count(.expiredNatSession)
                return nil
            }
            let isIcmpError = (try? packet.icmpError()) != nil
            guard isIcmpError || client.hasInternetResource
                    || client.filter(for: packet.source)?.permits(packet, byDestination: false) == true
            else {
                statistics.count(.notAllowed)
                return nil
            }
        }
        if tracksFlows { flows.inbound(packet, client: clientId, now: now, unixNanoseconds: unixNanoseconds(now)) }
        let datagram: EncryptedDatagram?
        do {
            datagram = try packet.withUnsafeBytes { bytes throws(NodeError) in
                try node.encapsulate(clientId, packet: bytes, into: output, now: now)
            }
        } catch .unknownConnection {
            statistics.count(.notConnected)
            return nil
        } catch {
            throw .node(error)
        }
        guard let datagram else {
            statistics.count(.noPath)
            return nil
        }
        statistics.toClients += 1
        return datagram
    }

    /// Applies a finished resolution: NAT for the proxy IPs and a DomainStatus back to the client (spec §5.6.3).
    public func resolved(_ request: GatewayResolveRequest, result: Result<[IpAddress], any Error>, now: Instant) {
        guard let client = clients[request.client] else { return }
        let status = client.dnsNat.resolved(request.request, result: result)
        client.recomputeFilters()
        sendControl(.domainStatus(status), to: request.client, now: now)
    }

    // MARK: Details

    /// The outbound policy and transform of spec §5.4; `true` when the packet goes to the TUN device.
    private func outbound(
        _ packet: inout IpPacket, from client: ClientOnGateway, outer: (source: SocketAddress, destination: SocketAddress),
        now: Instant
    ) throws(TunnelError) -> Bool {
        if (try? packet.icmpError()) != nil {
            statistics.count(.outboundIcmpError)
            return false
        }
        let destination = packet.destination
        let allowed = client.owns(packet.source)
            && (isOwnAddress(destination)
                || (client.hasInternetResource && !ProxyIpAllocator.isProxyIp(destination))
                || client.filter(for: destination)?.permits(packet, byDestination: true) == true)
        guard allowed else {
            statistics.count(.prohibited)
            answer(packet, to: client.id, with: IpPacket.icmpDestinationUnreachableProhibited, now: now)
            return false
        }
        if serveTunDns(packet, from: client, now: now) { return false }
        if tracksFlows {
            let resource = client.resource(for: destination)
            flows.outbound(packet, client: client.id, resource: resource, outer: outer, now: now,
                           unixNanoseconds: unixNanoseconds(now)) { client.flowContext(resource: resource, destination: destination) }
        }
        if !isOwnAddress(destination) {
            let translation: GatewayDnsNat.Outbound
            do {
                translation = try client.dnsNat.outbound(&packet, now: now)
            } catch {
                statistics.malformed += 1
                throw .packet(error)
            }
            if translation == .unreachable {
                statistics.count(.unreachable)
                answer(packet, to: client.id, with: IpPacket.icmpDestinationUnreachableNetwork, now: now)
                return false
            }
        }
        statistics.toTun += 1
        return true
    }

    private func handleControl(_ packet: IpPacket, from clientId: ClientId, now: Instant) throws(TunnelError) {
        let event: P2pControlEvent?
        do {
            event = try P2pControlEvent(packet)
        } catch {
            throw .p2pControl(error)
        }
        switch event {
        case .goodbye:
            // The client said goodbye: its state goes, and the next flow starts afresh (spec §5.11).
            node.removeConnection(clientId, now: now)
            forgetClient(clientId)
        case .assignedIps(let assigned):
            guard let client = clients[clientId] else { return }
            switch client.dnsNat.assignedIps(assigned, authorizedResource: client.dnsResource(assigned.resource)) {
            case .reply(let status):
                sendControl(.domainStatus(status), to: clientId, now: now)
            case .resolve(let request):
                events.append(.resolve(GatewayResolveRequest(client: clientId, request: request)))
            }
        case .domainStatus, nil:
            break
        }
    }

    func isOwnAddress(_ address: IpAddress) -> Bool {
        guard let interface else { return false }
        return address == .v4(interface.ipv4) || address == .v6(interface.ipv6)
    }

    /// Sends an ICMP error about `packet` back to the client through the tunnel.
    private func answer(_ packet: IpPacket, to client: ClientId, with makeError: (IpPacket, PacketBufferPool) throws(IpPacketError) -> IpPacket,
                        now: Instant) {
        guard let error = try? makeError(packet, .shared) else { return }
        send(error, to: client, now: now)
    }

    private func sendControl(_ event: P2pControlEvent, to client: ClientId, now: Instant) {
        guard let packet = try? event.packet() else { return }
        send(packet, to: client, now: now)
    }

    /// Encrypts a packet the gateway originates and queues it; dropped while the client has no path.
    func send(_ packet: IpPacket, to client: ClientId, now: Instant) {
        packet.withUnsafeBytes { bytes in try? node.encapsulateAndQueue(client, packet: bytes, now: now) }
    }
}
