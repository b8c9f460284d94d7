#if canImport(Glibc)
import CLinuxNetlink
import Foundation
import Glibc
import Synchronization

/// Tells when the host's addresses change (an address appears on or disappears from any interface but the
/// ignored one, the tunnel's own; ``HostAddressBook``, seeded from a dump of the addresses at start): the headless
/// client then resets its session, as Firezone does on a network change (spec `tunnel-dns.md` §4.11). Messages
/// about known addresses (IPv6's duplicate address detection finishing a second after an interface comes up)
/// are no change. Changes that come in a burst (an address removed and another added) are reported once,
/// `quietPeriod` after the last of them.
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
        var local = sockaddr_nl()  // the port the kernel gave the socket: its answers to our dump carry it
        var localLength = socklen_t(MemoryLayout<sockaddr_nl>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) }
        }
        let portId = local.nl_pid
        let dump = NetlinkRequest(type: Int(RTM_GETADDR), flags: Int32(NLM_F_REQUEST | NLM_F_DUMP), sequence: Self.dumpSequence,
                                  header: ifaddrmsg()).finished
        guard dump.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == dump.count else {
            let error = SystemCallError.last("send RTM_GETADDR dump")
            close(fd)
            throw error
        }
        let quietMilliseconds = Int32(quietPeriod.components.seconds * 1000 + quietPeriod.components.attoseconds / 1_000_000_000_000_000)
        Thread { [fd, flags] in
            Self.listen(fd: fd, portId: portId, ignoring: ignoredInterface, quietMilliseconds: quietMilliseconds, flags: flags,
                        onChange: onChange)
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

    private static func listen(fd: Int32, portId: UInt32, ignoring ignored: Int32, quietMilliseconds: Int32, flags: Flags,
                               onChange: @Sendable () -> Void) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var book = HostAddressBook(ignoring: ignored)
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
            let changed = book.apply(buffer[0..<count])
            if changed, !isDumpAnswer(buffer[0..<count], portId: portId) {
                pending = true
                waited = 0
            }
        }
    }

    /// The sequence number of the address dump that seeds the book.
    static let dumpSequence: UInt32 = 1

    /// Whether a datagram answers our dump (the addresses there at start) rather than announcing a change: a
    /// notification carries the sequence number and port of whoever made the change.
    static func isDumpAnswer(_ datagram: ArraySlice<UInt8>, portId: UInt32) -> Bool {
        guard datagram.count >= MemoryLayout<nlmsghdr>.size else { return false }
        let header = datagram.prefix(MemoryLayout<nlmsghdr>.size).withUnsafeBytes { $0.loadUnaligned(as: nlmsghdr.self) }
        return header.nlmsg_seq == dumpSequence && header.nlmsg_pid == portId
    }
}
#endif
