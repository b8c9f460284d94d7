import IpPacket
import SansIO
import Tunnel
import Turn

/// The sans-IO state an ``EventLoop`` drives: ``ClientState`` or ``GatewayState`` behind one face.
public protocol DataPlane: AnyObject, SendableMetatype {
    /// A datagram from the network (in `buffer`, decrypted in place); the packet for the TUN device, if any.
    func handleDatagram(local: SocketAddress, from source: SocketAddress, buffer: PacketBuffer, count: Int, now: Instant)
        throws(TunnelError) -> IpPacket?
    /// A packet the OS wrote into the TUN device; the datagram to send (its bytes in `output`), if any.
    func handleTunPacket(_ packet: inout IpPacket, into output: UnsafeMutableRawBufferPointer, now: Instant)
        throws(TunnelError) -> EncryptedDatagram?
    func pollTransmit() -> NodeTransmit?
    /// Packets the state itself writes to the TUN device (DNS answers, ICMP errors).
    func pollTunPacket() -> IpPacket?
    func pollTimeout() -> Instant?
    func handleTimeout(now: Instant)
    /// The relays to reach over TCP or TLS (for networks that block UDP), and a count of their changes.
    var relayStreams: [SocketAddress: RelayTransport] { get }
    var relayStreamsGeneration: Int { get }
}

extension ClientState: DataPlane {
    public func handleTunPacket(_ packet: inout IpPacket, into output: UnsafeMutableRawBufferPointer, now: Instant)
        throws(TunnelError) -> EncryptedDatagram? {
        try handleTunPacket(packet, into: output, now: now)
    }
}

extension GatewayState: DataPlane {
    /// The gateway answers on the network (ICMP errors go back through the tunnel), never to its own TUN device.
    public func pollTunPacket() -> IpPacket? { nil }
}
