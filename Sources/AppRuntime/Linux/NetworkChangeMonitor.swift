#if canImport(Glibc)
import CLinuxNetlink
import Foundation
import Glibc
import Synchronization

/// Tells when the host's addresses change (rtnetlink `RTM_NEWADDR`/`RTM_DELADDR` on any interface but the
/// ignored one, the tunnel's own): the headless client then resets its session, as Firezone does on a network
/// change (spec `tunnel-dns.md` §4.11). Changes that come in a burst (an address removed and another added)
/// are reported once, `quietPeriod` after the last of them.
public final class NetworkChangeMonitor: Sendable {
    private let fd: Int32
    private let flags = Flags()

    /// Shared with the listening thread.
    private final class Flags: Sendable {
        let stopping = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)
    }

    /// Listens from now on, in the network namespace of the calling thread.
    public init(ignoring ignoredInterface: Int32, quietPeriod: Duration = .milliseconds(500),
                onChange: @escaping @Sendable () -> Void) throws(SystemCallError) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        guard fd >= 0 else { throw .last("socket AF_NETLINK") }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = UInt32(RTMGRP_IPV4_IFADDR) | UInt32(RTMGRP_IPV6_IFADDR)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard bound == 0 else {
            let error = SystemCallError.last("bind netlink address groups")
            close(fd)
            throw error
        }
        let quietMilliseconds = Int32(quietPeriod.components.seconds * 1000 + quietPeriod.components.attoseconds / 1_000_000_000_000_000)
        Thread { [fd, flags] in
            Self.listen(fd: fd, ignoring: ignoredInterface, quietMilliseconds: quietMilliseconds, flags: flags, onChange: onChange)
            flags.finished.store(true, ordering: .releasing)
        }.start()
    }

    /// Stops listening (within a quarter of a second) and closes the socket.
    public func stop() {
        guard !flags.stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        while !flags.finished.load(ordering: .acquiring) { usleep(10_000) }
        close(fd)
    }

    deinit {
        stop()
    }

    private static func listen(fd: Int32, ignoring ignored: Int32, quietMilliseconds: Int32, flags: Flags,
                               onChange: @Sendable () -> Void) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var pending = false
        var waited: Int32 = 0
        while !flags.stopping.load(ordering: .acquiring) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 250)
            guard ready > 0 else {
                if pending {
                    waited += 250
                    if waited >= quietMilliseconds {
                        pending = false
                        onChange()
                    }
                }
                continue
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { continue }
            if changesAnAddress(buffer[0..<count], ignoring: ignored) {
                pending = true
                waited = 0
            }
        }
    }

    /// Whether the messages hold an address added to or removed from an interface other than `ignored`.
    /// Truncated or malformed messages end the reading there (kernel input is trusted, but never past its end).
    public static func changesAnAddress(_ messages: ArraySlice<UInt8>, ignoring ignored: Int32) -> Bool {
        let headerSize = MemoryLayout<nlmsghdr>.size
        var offset = messages.startIndex
        while offset + headerSize <= messages.endIndex {
            let header = messages[offset..<(offset + headerSize)].withUnsafeBytes { $0.loadUnaligned(as: nlmsghdr.self) }
            let length = Int(header.nlmsg_len)
            guard length >= headerSize, offset + length <= messages.endIndex else { return false }
            if header.nlmsg_type == UInt16(RTM_NEWADDR) || header.nlmsg_type == UInt16(RTM_DELADDR),
               length >= headerSize + MemoryLayout<ifaddrmsg>.size {
                let body = messages[(offset + headerSize)...].prefix(MemoryLayout<ifaddrmsg>.size)
                let message = body.withUnsafeBytes { $0.loadUnaligned(as: ifaddrmsg.self) }
                if Int32(message.ifa_index) != ignored { return true }
            }
            offset += (length + 3) & ~3
        }
        return false
    }
}
#endif
