#if canImport(Glibc)
import CLinuxNetlink
import SansIO

/// One route-netlink request as bytes: `nlmsghdr`, a family header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`,
/// `fib_rule_hdr`) and attributes, every part aligned to 4 bytes as `NLMSG_ALIGN`/`RTA_ALIGN` require.
struct NetlinkRequest {
    private(set) var bytes: [UInt8] = []

    init<Header>(type: Int, flags: Int32, sequence: UInt32, header: Header) {
        var message = nlmsghdr()
        message.nlmsg_type = UInt16(type)
        message.nlmsg_flags = UInt16(flags)
        message.nlmsg_seq = sequence
        append(message)
        append(header)
    }

    /// A `rtattr` with `payload`.
    mutating func attribute(_ type: Int32, _ payload: [UInt8]) {
        var attribute = rtattr()
        attribute.rta_len = UInt16(MemoryLayout<rtattr>.size + payload.count)
        attribute.rta_type = UInt16(type)
        append(attribute)
        bytes += payload
        pad()
    }

    mutating func attribute(_ type: Int32, _ value: UInt32) {
        attribute(type, withUnsafeBytes(of: value) { Array($0) })
    }

    mutating func attribute(_ type: Int32, _ address: IpAddress) {
        attribute(type, address.networkBytes)
    }

    /// The bytes with the total length written into the header.
    var finished: [UInt8] {
        var result = bytes
        withUnsafeBytes(of: UInt32(result.count)) { length in
            for index in 0..<4 { result[index] = length[index] }
        }
        return result
    }

    private mutating func append<Value>(_ value: Value) {
        withUnsafeBytes(of: value) { bytes += $0 }
        pad()
    }

    private mutating func pad() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }
}

extension IpAddress {
    /// The address in network byte order, as the kernel takes it.
    var networkBytes: [UInt8] {
        switch self {
        case .v4(let address):
            withUnsafeBytes(of: address.value.bigEndian) { Array($0) }
        case .v6(let address):
            withUnsafeBytes(of: address.high.bigEndian) { Array($0) } + withUnsafeBytes(of: address.low.bigEndian) { Array($0) }
        }
    }

    /// `AF_INET` or `AF_INET6`.
    var addressFamily: UInt8 {
        switch self {
        case .v4: UInt8(AF_INET)
        case .v6: UInt8(AF_INET6)
        }
    }
}
#endif
