#if canImport(Glibc)
import CLinuxTun
import Glibc

/// A Linux TUN device (`/dev/net/tun`, `IFF_TUN | IFF_NO_PI`): IP packets without a link header, non-blocking.
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

    /// Opens (or attaches to) the device `name`, at most 15 bytes.
    public init(name: String = TunDevice.firezoneName) throws(SystemCallError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count < Int(IFNAMSIZ), !bytes.contains(0) else {
            throw SystemCallError("TUN device name '\(name)'", errno: EINVAL)
        }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .last("open /dev/net/tun") }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: bytes) }
        request.ifr_ifru.ifru_flags = Int16(IFF_TUN | IFF_NO_PI)
        guard ioctl(fd, UInt(ctun_TUNSETIFF()), &request) >= 0 else {
            let error = SystemCallError.last("TUNSETIFF \(name)")
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
    }

    deinit {
        close(fileDescriptor)
    }

    /// Reads one packet into `buffer`; `nil` when none is waiting.
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
}
#endif
