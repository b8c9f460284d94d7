import AppRuntime
import CLinuxNetlink
import Testing

/// The rtnetlink reading of ``NetworkChangeMonitor``: which messages change the host's addresses
/// (``HostAddressBook``), and that truncated or lying lengths end the reading instead of running past the datagram.
@Suite("AppRuntime: rtnetlink address changes")
struct NetworkChangeMonitorTests {
    /// One message: a netlink header of `type`, an ifaddrmsg for interface `index` and, unless `nil`, an
    /// `IFA_ADDRESS` attribute holding `address`.
    static func message(type: Int32, index: UInt32, address: [UInt8]? = [192, 0, 2, 1], flags: UInt8 = 0,
                        length: UInt32? = nil) -> [UInt8] {
        var body = ifaddrmsg()
        body.ifa_family = UInt8(address?.count == 16 ? AF_INET6 : AF_INET)
        body.ifa_prefixlen = 24
        body.ifa_flags = flags
        body.ifa_index = index
        var attributes: [UInt8] = []
        if let address {
            var attribute = rtattr()
            attribute.rta_len = UInt16(MemoryLayout<rtattr>.size + address.count)
            attribute.rta_type = UInt16(IFA_ADDRESS)
            attributes = withUnsafeBytes(of: attribute) { Array($0) } + address
            while attributes.count % 4 != 0 { attributes.append(0) }
        }
        var header = nlmsghdr()
        let total = MemoryLayout<nlmsghdr>.size + MemoryLayout<ifaddrmsg>.size + attributes.count
        header.nlmsg_len = length ?? UInt32(total)
        header.nlmsg_type = UInt16(type)
        return withUnsafeBytes(of: header) { Array($0) } + withUnsafeBytes(of: body) { Array($0) } + attributes
    }

    static let new = Int32(RTM_NEWADDR)
    static let deleted = Int32(RTM_DELADDR)

    @Test("an address that appears or disappears is a change, except on the ignored interface; other messages are not")
    func addressMessages() {
        var book = HostAddressBook(ignoring: 7)
        func apply(_ messages: some Collection<UInt8>) -> Bool { book.apply(ArraySlice(messages)) }
        #expect(apply(Self.message(type: Self.new, index: 2)))
        #expect(apply(Self.message(type: Self.deleted, index: 2)))
        #expect(!apply(Self.message(type: Self.new, index: 7)), "the tunnel's own interface")
        #expect(!apply(Self.message(type: Int32(RTM_NEWLINK), index: 2)))
        let batch = Self.message(type: Self.new, index: 7) + Self.message(type: Self.new, index: 3)
        #expect(apply(batch), "the second message of a datagram counts too")
        #expect(book.count == 1)
    }

    @Test("a message about an address already known is no change (IPv6 duplicate address detection finishing)")
    func knownAddresses() {
        let linkLocal: [UInt8] = [0xFE, 0x80] + [UInt8](repeating: 0, count: 13) + [1]
        var book = HostAddressBook(ignoring: 7)
        func apply(_ messages: some Collection<UInt8>) -> Bool { book.apply(ArraySlice(messages)) }
        let tentative = UInt8(IFA_F_TENTATIVE)
        #expect(apply(Self.message(type: Self.new, index: 2, address: linkLocal, flags: tentative)))
        #expect(!apply(Self.message(type: Self.new, index: 2, address: linkLocal)), "the same address, no longer tentative")
        #expect(!apply(Self.message(type: Self.deleted, index: 3, address: linkLocal)), "not on that interface")
        #expect(apply(Self.message(type: Self.new, index: 3, address: linkLocal)), "the same address on another interface")
        #expect(apply(Self.message(type: Self.deleted, index: 2, address: linkLocal)))
        #expect(!apply(Self.message(type: Self.deleted, index: 2, address: linkLocal)), "already gone")
    }

    @Test("truncated messages, lengths beyond the datagram and messages without an address are not read")
    func badLengths() {
        var book = HostAddressBook(ignoring: 7)
        func apply(_ messages: some Collection<UInt8>) -> Bool { book.apply(ArraySlice(messages)) }
        let whole = Self.message(type: Self.new, index: 2)
        #expect(!apply(whole.prefix(10)), "shorter than a header")
        #expect(!apply(whole.dropLast(4)), "the length says more than arrived")
        #expect(!apply(Self.message(type: Self.new, index: 2, length: 4)), "a length shorter than the header")
        #expect(!apply(Self.message(type: Self.new, index: 2, length: 16)), "a header without its ifaddrmsg")
        #expect(!apply(Self.message(type: Self.new, index: 2, address: nil)), "no address attribute")
        #expect(!apply([]))
        #expect(book.count == 0)
    }
}
