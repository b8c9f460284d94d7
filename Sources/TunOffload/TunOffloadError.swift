/// Why a frame read from a TUN device with offloads could not be turned into IP packets.
public enum TunOffloadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the virtio header, or than the headers the frame claims.
    case truncated(count: Int)
    /// A GSO type the device was not asked for (UDP segmentation is not enabled).
    case unsupportedGsoType(UInt8)
    /// The partial checksum's start and offset lie outside the packet.
    case checksumOutsidePacket(start: Int, offset: Int, count: Int)
    /// A TCP super-packet whose IP or TCP header is not what its GSO type says.
    case malformedSuperPacket(String)
    /// A packet or segment larger than the tunnel's MTU (a GSO size above it).
    case segmentTooLarge(Int)

    public var description: String {
        switch self {
        case .truncated(let count): "a TUN frame of \(count) bytes is cut short"
        case .unsupportedGsoType(let type): "a TUN frame has GSO type \(type), which was not enabled"
        case .checksumOutsidePacket(let start, let offset, let count):
            "a partial checksum at \(start)+\(offset) lies outside a \(count)-byte packet"
        case .malformedSuperPacket(let reason): "a TCP super-packet from the TUN device: \(reason)"
        case .segmentTooLarge(let size): "a \(size)-byte packet is larger than the tunnel's MTU"
        }
    }
}
