import SansIO

extension RelayCore {
    /// ChannelData from a client: the payload goes to the channel's peer if the channel is bound. Over UDP
    /// ChannelData is unpadded (RFC 8656 §12.5), but up to 3 bytes of padding are tolerated.
    func relayFromClient(_ datagram: UnsafeRawBufferPointer, from client: RelayClient, now: Instant) -> ClientOutcome {
        guard datagram.count >= 4 else { return dropped() }
        let number = UInt16(datagram[0]) << 8 | UInt16(datagram[1])
        let length = Int(UInt16(datagram[2]) << 8 | UInt16(datagram[3]))
        guard datagram.count - 4 >= length, datagram.count - 4 - length < 4,
              let allocation = allocations[client], allocation.expires > now,
              let channel = allocation.channels[number], channel.expires > now
        else { return dropped() }
        statistics.relayedToPeers += 1
        statistics.relayedToPeersBytes += length
        return .relay(PeerBound(port: allocation.port, peer: channel.peer, payload: 4..<(4 + length)))
    }

    /// A datagram from `peer` on an allocation's `port`. `buffer` holds it from offset 4 (`count` bytes); when the
    /// peer has a bound channel the ChannelData header is written into the first 4 bytes and the result says
    /// where to send the whole: to the client, from the listening port (or on its stream, padded). Nothing is copied or
    /// allocated.
    public func relayFromPeer(_ buffer: UnsafeMutableRawBufferPointer, count: Int, from peer: SocketAddress, port: UInt16,
                              now: Instant) -> ClientBound? {
        guard peer.port != 0 else {
            statistics.fromPortZero += 1
            return nil
        }
        guard buffer.count >= count + 4, count <= Int(UInt16.max),
              let client = clientByPort[port], let allocation = allocations[client], allocation.expires > now,
              let number = allocation.channelByPeer[peer], let channel = allocation.channels[number], channel.expires > now
        else {
            statistics.dropped += 1
            return nil
        }
        buffer[0] = UInt8(number >> 8)
        buffer[1] = UInt8(number & 0xFF)
        buffer[2] = UInt8(count >> 8)
        buffer[3] = UInt8(count & 0xFF)
        statistics.relayedToClients += 1
        statistics.relayedToClientsBytes += count
        return ClientBound(client: client.address, transport: client.transport, count: count + 4)
    }
}
