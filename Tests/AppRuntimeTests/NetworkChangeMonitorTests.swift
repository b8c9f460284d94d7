import AppRuntime
import CLinuxNetlink
import Testing

/// The rtnetlink reading of ``NetworkChangeMonitor``: which messages count as an address change, and that
/// truncated or lying lengths end the reading instead of running past the datagram.
@Suite("AppRuntime: rtnetlink address changes")
struct NetworkChangeMonitorTests {
    /// One message: a netlink header of `type`, then an ifaddrmsg for interface `index`.
    static func message(type: Int32, index: UInt32, length: UInt32? = nil) -> [UInt8] {
        var header = nlmsghdr()
        let total = MemoryLayout<nlmsghdr>.size + MemoryLayout<ifaddrmsg>.size
        header.nlmsg_len = length ?? UInt32(total)
        header.nlmsg_type = UInt16(type)
        var body = ifaddrmsg()
        body.ifa_index = index
        return withUnsafeBytes(of: header) { Array($0) } + withUnsafeBytes(of: body) { Array($0) }
    }

    @Test("new and deleted addresses count, except on the ignored interface; other messages do not")
    func addressMessages() {
        let tun: Int32 = 7
        #expect(NetworkChangeMonitor.changesAnAddress(Self.message(type: Int32(RTM_NEWADDR), index: 2)[...], ignoring: tun))
        #expect(NetworkChangeMonitor.changesAnAddress(Self.message(type: Int32(RTM_DELADDR), index: 2)[...], ignoring: tun))
        #expect(!NetworkChangeMonitor.changesAnAddress(Self.message(type: Int32(RTM_NEWADDR), index: 7)[...], ignoring: tun))
        #expect(!NetworkChangeMonitor.changesAnAddress(Self.message(type: Int32(RTM_NEWLINK), index: 2)[...], ignoring: tun))
        let batch = Self.message(type: Int32(RTM_NEWADDR), index: 7) + Self.message(type: Int32(RTM_DELADDR), index: 3)
        #expect(NetworkChangeMonitor.changesAnAddress(batch[...], ignoring: tun), "the second message of a datagram counts too")
    }

    @Test("truncated messages and lengths beyond the datagram are not read")
    func badLengths() {
        let whole = Self.message(type: Int32(RTM_NEWADDR), index: 2)
        #expect(!NetworkChangeMonitor.changesAnAddress(whole.prefix(10), ignoring: 7), "shorter than a header")
        #expect(!NetworkChangeMonitor.changesAnAddress(whole.dropLast(4), ignoring: 7), "the length says more than arrived")
        #expect(!NetworkChangeMonitor.changesAnAddress(Self.message(type: Int32(RTM_NEWADDR), index: 2, length: 4)[...], ignoring: 7),
                "a length shorter than the header")
        #expect(!NetworkChangeMonitor.changesAnAddress(Self.message(type: Int32(RTM_NEWADDR), index: 2, length: 16)[...], ignoring: 7),
                "a header without its ifaddrmsg")
        #expect(!NetworkChangeMonitor.changesAnAddress([][...], ignoring: 7))
    }
}
