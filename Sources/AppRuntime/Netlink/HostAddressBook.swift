#if canImport(Glibc)
import CLinuxNetlink
import Glibc

/// The host's addresses as rtnetlink reports them, by interface, so that a change means an address that appeared
/// or disappeared, not another message about one already known: IPv6's duplicate address detection finishing
/// (the same address again, no longer tentative) or a lifetime refreshed. The tunnel's own interface is ignored.
public struct HostAddressBook: Sendable {
    /// An address on an interface: its index, family, prefix length and bytes.
    struct Entry: Hashable, Sendable {
        var interface: UInt32
        var family: UInt8
        var prefixLength: UInt8
        var address: [UInt8]
    }

    private var entries: Set<Entry> = []
    private let ignored: Int32

    public init(ignoring ignoredInterface: Int32) {
        ignored = ignoredInterface
    }

    /// How many addresses are known.
    public var count: Int { entries.count }

    /// Applies `RTM_NEWADDR` and `RTM_DELADDR` messages (a datagram may hold several); returns whether an address
    /// appeared or disappeared. Truncated or malformed messages end the reading there (kernel input is trusted,
    /// but never read past its end).
    public mutating func apply(_ messages: ArraySlice<UInt8>) -> Bool {
        let headerSize = MemoryLayout<nlmsghdr>.size
        var changed = false
        var offset = messages.startIndex
        while offset + headerSize <= messages.endIndex {
            let header = messages[offset..<(offset + headerSize)].withUnsafeBytes { $0.loadUnaligned(as: nlmsghdr.self) }
            let length = Int(header.nlmsg_len)
            guard length >= headerSize, offset + length <= messages.endIndex else { return changed }
            let type = Int(header.nlmsg_type)
            if type == Int(RTM_NEWADDR) || type == Int(RTM_DELADDR),
               let entry = Self.entry(messages[(offset + headerSize)..<(offset + length)]), Int32(entry.interface) != ignored {
                changed = (type == Int(RTM_NEWADDR) ? entries.insert(entry).inserted : entries.remove(entry) != nil) || changed
            }
            offset += (length + 3) & ~3
        }
        return changed
    }

    /// The address an `ifaddrmsg` and its attributes describe: `IFA_LOCAL` where present (the interface's own
    /// address on point-to-point links), else `IFA_ADDRESS`.
    static func entry(_ body: ArraySlice<UInt8>) -> Entry? {
        let headerSize = MemoryLayout<ifaddrmsg>.size
        guard body.count >= headerSize else { return nil }
        let message = body.prefix(headerSize).withUnsafeBytes { $0.loadUnaligned(as: ifaddrmsg.self) }
        var local: [UInt8]?
        var address: [UInt8]?
        var offset = body.startIndex + headerSize
        let attributeHeader = MemoryLayout<rtattr>.size
        while offset + attributeHeader <= body.endIndex {
            let attribute = body[offset..<(offset + attributeHeader)].withUnsafeBytes { $0.loadUnaligned(as: rtattr.self) }
            let length = Int(attribute.rta_len)
            guard length >= attributeHeader, offset + length <= body.endIndex else { break }
            let payload = Array(body[(offset + attributeHeader)..<(offset + length)])
            if Int(attribute.rta_type) == Int(IFA_LOCAL) { local = payload }
            if Int(attribute.rta_type) == Int(IFA_ADDRESS) { address = payload }
            offset += (length + 3) & ~3
        }
        guard let bytes = local ?? address else { return nil }
        return Entry(interface: message.ifa_index, family: message.ifa_family, prefixLength: message.ifa_prefixlen, address: bytes)
    }
}
#endif
