import Ice
import SansIO
import Turn

extension Node {
    /// Queues a WireGuard message for the peer on a nominated path, wrapped in ChannelData when our relay
    /// carries it (if the relay has no channel to the peer yet, it asks for one and the message follows the
    /// request; only without an allocation is it dropped).
    func send(_ message: UnsafeRawBufferPointer, on socket: PeerSocket, now: Instant) {
        switch socket {
        case .peerToPeer(let source, let destination), .peerToRelay(let source, let destination):
            transmits.append(NodeTransmit(source: source, destination: destination, payload: Array(message)))
        case .relayToPeer(let relay, let destination), .relayToRelay(let relay, let destination):
            relayThrough(relay, message, to: destination, now: now)
        }
    }

    /// Queues an ICE check or answer from the local candidate it belongs to.
    func send(_ transmit: IceTransmit, now: Instant) {
        guard transmit.source.kind == .relayed else {
            transmits.append(NodeTransmit(source: transmit.source.base, destination: transmit.destination,
                                          payload: transmit.payload))
            return
        }
        guard let (id, _) = allocations.entries.first(where: { $0.allocation.relayAddresses.contains(transmit.source.address) })
        else { return }
        transmit.payload.withUnsafeBytes { relayThrough(id, $0, to: transmit.destination, now: now) }
    }

    private func relayThrough(_ relay: String, _ message: UnsafeRawBufferPointer, to peer: SocketAddress, now: Instant) {
        guard let allocation = allocations.allocation(id: relay) else {
            statistics.droppedWithoutPath += 1
            return
        }
        var framed = [UInt8](repeating: 0, count: message.count + ChannelData.headerLength)
        let sent = framed.withUnsafeMutableBytes { buffer -> (destination: SocketAddress, count: Int)? in
            UnsafeMutableRawBufferPointer(rebasing: buffer[ChannelData.headerLength...]).copyMemory(from: message)
            // Without a channel the first call asks for one and frames nothing; the second then frames the
            // message on the channel in flight. The ChannelBind leaves first (``pollTransmit()`` drains relay
            // control before anything else), so the check follows it instead of waiting for a retransmission.
            return allocation.encodeChannelData(to: peer, payloadLength: message.count, into: buffer, now: now)
                ?? allocation.encodeChannelData(to: peer, payloadLength: message.count, into: buffer, now: now)
        }
        guard let sent else {
            statistics.droppedWithoutPath += 1
            return
        }
        transmits.append(NodeTransmit(source: nil, destination: sent.destination, payload: Array(framed[0..<sent.count])))
    }

    /// The path ICE nominated, named by who carries it (spec §1.4).
    func peerSocket(source: IceCandidate, destination: SocketAddress, agent: IceAgent) -> PeerSocket? {
        let remoteIsRelay = agent.remoteCandidates.first { $0.address == destination }?.kind == .relayed
        guard source.kind == .relayed else {
            return remoteIsRelay ? .peerToRelay(source: source.base, destination: destination)
                : .peerToPeer(source: source.base, destination: destination)
        }
        guard let (relay, _) = allocations.entries.first(where: { $0.allocation.relayAddresses.contains(source.address) })
        else { return nil }
        return remoteIsRelay ? .relayToRelay(relay: relay, destination: destination)
            : .relayToPeer(relay: relay, destination: destination)
    }
}
