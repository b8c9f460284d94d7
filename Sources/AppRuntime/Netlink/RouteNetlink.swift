#if canImport(Glibc)
import CLinuxNetlink
import Glibc
import SansIO

/// Why a route-netlink request failed.
public enum NetlinkError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The socket itself failed (creating, sending, receiving).
    case system(SystemCallError)
    /// The kernel refused the request, e.g. `EEXIST` for a route that is there or `ENODEV` for a gone device.
    case refused(operation: String, errno: Int32)
    /// The kernel's answer could not be read (a length that does not fit).
    case malformedReply(operation: String, detail: String)

    public var description: String {
        switch self {
        case .system(let error): "netlink: \(error)"
        case let .refused(operation, errno): "netlink \(operation): \(String(cString: strerror(errno)))"
        case let .malformedReply(operation, detail): "netlink \(operation): malformed reply (\(detail))"
        }
    }
}

/// A policy-routing rule (`ip rule`): packets matching it look up `table`. Firezone's rules match packets that do
/// *not* carry its firewall mark, so the tunnel's own sockets (which set the mark) never route into the tunnel.
public struct PolicyRule: Hashable, Sendable {
    public var family: IpVersion
    public var priority: UInt32
    public var table: UInt32
    public var firewallMark: UInt32?
    /// Match packets *without* the mark (`not fwmark …`).
    public var invert: Bool

    public init(family: IpVersion, priority: UInt32, table: UInt32, firewallMark: UInt32? = nil, invert: Bool = false) {
        self.family = family
        self.priority = priority
        self.table = table
        self.firewallMark = firewallMark
        self.invert = invert
    }
}

/// Addresses, link state, routes and policy rules over a route-netlink socket (rtnetlink(7)), without shelling
/// out to `ip`. Every request asks for an acknowledgement, so a refusal surfaces as ``NetlinkError/refused``.
/// The socket belongs to the network namespace of the thread that creates it.
public final class RouteNetlink {
    private let fd: Int32
    private var sequence: UInt32 = 0
    private var reply = [UInt8](repeating: 0, count: 65_536)

    public init() throws(NetlinkError) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        guard fd >= 0 else { throw .system(.last("socket AF_NETLINK")) }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard bound == 0 else {
            let error = SystemCallError.last("bind AF_NETLINK")
            close(fd)
            throw .system(error)
        }
    }

    deinit {
        close(fd)
    }

    /// Sets the link up or down, and optionally its MTU and transmit queue length.
    public func setLink(index: Int32, up: Bool, mtu: UInt32? = nil, transmitQueueLength: UInt32? = nil) throws(NetlinkError) {
        var link = ifinfomsg()
        link.ifi_family = UInt8(AF_UNSPEC)
        link.ifi_index = index
        link.ifi_flags = up ? UInt32(IFF_UP) : 0
        link.ifi_change = UInt32(IFF_UP)
        var request = NetlinkRequest(type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK, sequence: nextSequence(), header: link)
        if let mtu { request.attribute(Int32(IFLA_MTU), mtu) }
        if let transmitQueueLength { request.attribute(Int32(IFLA_TXQLEN), transmitQueueLength) }
        try send(request, "set link \(index) \(up ? "up" : "down")")
    }

    /// Adds `network` (an address with its prefix length) to the interface, replacing it if present. IPv6
    /// addresses skip duplicate address detection, which a point-to-point tunnel does not need.
    public func addAddress(_ network: IpNetwork, interface index: Int32) throws(NetlinkError) {
        try address(RTM_NEWADDR, network, index, flags: NLM_F_CREATE | NLM_F_REPLACE, "add address \(network)")
    }

    public func removeAddress(_ network: IpNetwork, interface index: Int32) throws(NetlinkError) {
        try address(RTM_DELADDR, network, index, flags: 0, "remove address \(network)")
    }

    /// Routes `network` to the interface in `table` (replacing a route to the same destination there).
    public func addRoute(_ network: IpNetwork, interface index: Int32, table: UInt32) throws(NetlinkError) {
        try route(RTM_NEWROUTE, network, index, table, flags: NLM_F_CREATE | NLM_F_REPLACE, "add route \(network) table \(table)")
    }

    public func removeRoute(_ network: IpNetwork, interface index: Int32, table: UInt32) throws(NetlinkError) {
        try route(RTM_DELROUTE, network, index, table, flags: 0, "remove route \(network) table \(table)")
    }

    public func addRule(_ rule: PolicyRule) throws(NetlinkError) {
        try self.rule(RTM_NEWRULE, rule, flags: NLM_F_CREATE | NLM_F_EXCL, "add rule priority \(rule.priority)")
    }

    public func removeRule(_ rule: PolicyRule) throws(NetlinkError) {
        try self.rule(RTM_DELRULE, rule, flags: 0, "remove rule priority \(rule.priority)")
    }

    // MARK: Requests

    private func address(_ type: Int, _ network: IpNetwork, _ index: Int32, flags: Int32, _ operation: String) throws(NetlinkError) {
        var header = ifaddrmsg()
        header.ifa_family = network.address.addressFamily
        header.ifa_prefixlen = network.prefixLength
        header.ifa_flags = network.address.version == .v6 ? UInt8(IFA_F_NODAD) : 0
        header.ifa_scope = UInt8(RT_SCOPE_UNIVERSE.rawValue)
        header.ifa_index = UInt32(index)
        var request = NetlinkRequest(type: type, flags: NLM_F_REQUEST | NLM_F_ACK | flags, sequence: nextSequence(), header: header)
        if network.address.version == .v4 { request.attribute(Int32(IFA_LOCAL), network.address) }
        request.attribute(Int32(IFA_ADDRESS), network.address)
        try send(request, operation)
    }

    private func route(_ type: Int, _ network: IpNetwork, _ index: Int32, _ table: UInt32, flags: Int32,
                       _ operation: String) throws(NetlinkError) {
        var header = rtmsg()
        header.rtm_family = network.address.addressFamily
        header.rtm_dst_len = network.prefixLength
        header.rtm_table = table < 256 ? UInt8(table) : UInt8(RT_TABLE_UNSPEC.rawValue)
        header.rtm_protocol = UInt8(RTPROT_STATIC)
        header.rtm_scope = UInt8(RT_SCOPE_LINK.rawValue)
        header.rtm_type = UInt8(RTN_UNICAST)
        var request = NetlinkRequest(type: type, flags: NLM_F_REQUEST | NLM_F_ACK | flags, sequence: nextSequence(), header: header)
        request.attribute(Int32(RTA_TABLE.rawValue), table)
        request.attribute(Int32(RTA_DST.rawValue), network.address)
        request.attribute(Int32(RTA_OIF.rawValue), UInt32(index))
        try send(request, operation)
    }

    private func rule(_ type: Int, _ rule: PolicyRule, flags: Int32, _ operation: String) throws(NetlinkError) {
        var header = fib_rule_hdr()
        header.family = rule.family == .v4 ? UInt8(AF_INET) : UInt8(AF_INET6)
        header.table = rule.table < 256 ? UInt8(rule.table) : UInt8(RT_TABLE_UNSPEC.rawValue)
        header.action = UInt8(FR_ACT_TO_TBL)
        header.flags = rule.invert ? UInt32(FIB_RULE_INVERT) : 0
        var request = NetlinkRequest(type: type, flags: NLM_F_REQUEST | NLM_F_ACK | flags, sequence: nextSequence(), header: header)
        request.attribute(Int32(FRA_PRIORITY), rule.priority)
        request.attribute(Int32(FRA_TABLE), rule.table)
        if let mark = rule.firewallMark {
            request.attribute(Int32(FRA_FWMARK), mark)
            request.attribute(Int32(FRA_FWMASK), UInt32.max)
        }
        try send(request, operation)
    }

    private func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// Sends the request and reads until the kernel acknowledges it (or refuses it).
    private func send(_ request: NetlinkRequest, _ operation: String) throws(NetlinkError) {
        let bytes = request.finished
        let sequence = self.sequence
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw .system(.last("send netlink \(operation)")) }
        while true {
            let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count >= 0 else {
                if errno == EINTR { continue }
                throw .system(.last("recv netlink \(operation)"))
            }
            if try acknowledgement(in: count, sequence: sequence, operation) { return }
        }
    }

    /// Walks the messages of one reply; `true` once the acknowledgement of `sequence` was among them.
    private func acknowledgement(in count: Int, sequence: UInt32, _ operation: String) throws(NetlinkError) -> Bool {
        let headerSize = MemoryLayout<nlmsghdr>.size
        var offset = 0
        while offset + headerSize <= count {
            let header = reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: nlmsghdr.self) }
            let length = Int(header.nlmsg_len)
            guard length >= headerSize, offset + length <= count else {
                throw .malformedReply(operation: operation, detail: "message length \(length) at \(offset) of \(count)")
            }
            if header.nlmsg_seq == sequence, Int32(header.nlmsg_type) == NLMSG_ERROR {
                guard length >= headerSize + 4 else {
                    throw .malformedReply(operation: operation, detail: "error message of \(length) bytes")
                }
                let code = reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + headerSize, as: Int32.self) }
                guard code == 0 else { throw .refused(operation: operation, errno: -code) }
                return true
            }
            offset += (length + 3) & ~3
        }
        return false
    }
}
#endif
