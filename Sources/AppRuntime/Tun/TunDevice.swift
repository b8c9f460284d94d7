#if canImport(Glibc)
import CLinuxTun
import TunOffload
import Glibc

/// A Linux TUN device (`/dev/net/tun`, `IFF_TUN | IFF_NO_PI`): IP packets without a link header, non-blocking.
///
/// With `offloads`, the device also has `IFF_VNET_HDR` with checksum and TCP segmentation offloads: every frame
/// starts with a ``VirtioNetHeader``, reads may return TCP super-packets of up to 64 KiB (``TunFrameSplitter`` cuts
/// them) and writes may carry them (``TunWriteCoalescer`` joins them), so one system call moves dozens of packets.
///
/// Creating the device does not configure it; addresses, MTU and routes are set with ``RouteNetlink``. The device
/// lives in the network namespace of the thread that creates it and disappears when this object is released.
public final class TunDevice {
    /// Firezone's interface name on Linux (spec `tunnel-dns.md` §4.11).
    public static let firezoneName = "tun-firezone"

    public let name: String
    /// The kernel's interface index, for ``RouteNetlink``.
    public let index: Int32
    public let fileDescriptor: Int32
    /// Whether frames carry a ``VirtioNetHeader``.
    public let offloads: Bool

    /// The offloads asked for: partial checksums and TCP segmentation over IPv4 and IPv6.
    static let offloadFlags = UInt32(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)

    /// Opens (or attaches to) the device `name`, at most 15 bytes.
    public init(name: String = TunDevice.firezoneName, offloads: Bool = false) throws(SystemCallError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count < Int(IFNAMSIZ), !bytes.contains(0) else {
            throw SystemCallError("TUN device name '\(name)'", errno: EINVAL)
        }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .last("open /dev/net/tun") }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: bytes) }
        request.ifr_ifru.ifru_flags = Int16(IFF_TUN | IFF_NO_PI | (offloads ? IFF_VNET_HDR : 0))
        guard ioctl(fd, UInt(ctun_TUNSETIFF()), &request) >= 0 else {
            let error = SystemCallError.last("TUNSETIFF \(name)")
            close(fd)
            throw error
        }
        if offloads, ctun_set_offload(fd, Self.offloadFlags) < 0 {
            let error = SystemCallError.last("TUNSETOFFLOAD \(name)")
            close(fd)
            throw error
        }
        let index = Int32(bitPattern: if_nametoindex(name))
        guard index > 0 else {
            let error = SystemCallError.last("if_nametoindex \(name)")
            close(fd)
            throw error
        }
        self.name = name
        self.index = index
        self.fileDescriptor = fd
        self.offloads = offloads
    }

    /// Opens `name` with offloads, or without them when the kernel refuses them.
    public static func preferringOffloads(name: String = TunDevice.firezoneName) throws(SystemCallError) -> TunDevice {
        do {
            return try TunDevice(name: name, offloads: true)
        } catch {
            return try TunDevice(name: name)
        }
    }

    deinit {
        close(fileDescriptor)
    }

    /// Reads one packet (with offloads: one frame, header first) into `buffer`; `nil` when none is waiting.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int? {
        let count = Glibc.read(fileDescriptor, buffer.baseAddress, buffer.count)
        guard count < 0 else { return count }
        if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
        throw .last("read \(name)")
    }

    /// Writes one packet; returns `false` when the device's queue is full (the packet is dropped, as the
    /// kernel would drop it on a full queue).
    @discardableResult
    public func write(_ packet: UnsafeRawBufferPointer) throws(SystemCallError) -> Bool {
        let count = Glibc.write(fileDescriptor, packet.baseAddress, packet.count)
        guard count < 0 else { return true }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS { return false }
        throw .last("write \(name)")
    }

    /// Writes one frame of a device with offloads: `header`, then `packet`, in one system call. Returns `false`
    /// when the device's queue is full.
    public func write(header: VirtioNetHeader, packet: UnsafeRawBufferPointer) throws(SystemCallError) -> Bool {
        var headerBytes = (UInt64(0), UInt64(0))
        let count = withUnsafeMutableBytes(of: &headerBytes) { raw in
            header.write(to: raw)
            var vectors = (iovec(iov_base: raw.baseAddress, iov_len: VirtioNetHeader.size),
                           iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count))
            return withUnsafeMutableBytes(of: &vectors) { writev(fileDescriptor, $0.baseAddress!.assumingMemoryBound(to: iovec.self), 2) }
        }
        guard count < 0 else { return true }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS { return false }
        throw .last("write \(name)")
    }
}
#endif
