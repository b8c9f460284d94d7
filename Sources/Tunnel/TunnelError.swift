import IpPacket
import P2pControl
import SansIO

/// Why the client or gateway refused a datagram or packet; each is counted, none aborts a batch.
public enum TunnelError: Error, Hashable, Sendable, CustomStringConvertible {
    case node(NodeError)
    case packet(IpPacketError)
    case p2pControl(P2pControlError)

    public var description: String {
        switch self {
        case .node(let error): "\(error)"
        case .packet(let error): "\(error)"
        case .p2pControl(let error): "p2p control: \(error)"
        }
    }
}

extension Node {
    /// De-multiplexes and decrypts a datagram held in a pool buffer and parses the IP packet it carried, in
    /// place. `nil` when the datagram was control traffic or dropped.
    func decapsulatePacket(
        local: SocketAddress, from source: SocketAddress, buffer: PacketBuffer, count: Int, now: Instant
    ) throws(TunnelError) -> (peer: PeerId, packet: IpPacket)? {
        let decrypted: (peer: PeerId, packet: Range<Int>)?
        do {
            decrypted = try decapsulate(local: local, from: source, buffer: buffer.bytes, count: count, now: now)
        } catch {
            throw .node(error)
        }
        guard let (peer, range) = decrypted else { return nil }
        do {
            return (peer, try IpPacket(buffer: buffer, offset: range.lowerBound, count: range.count))
        } catch {
            throw .packet(error)
        }
    }
}
