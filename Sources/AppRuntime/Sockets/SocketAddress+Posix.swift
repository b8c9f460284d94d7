#if canImport(Glibc)
import Glibc
import SansIO

extension SocketAddress {
    /// Writes the address as a `sockaddr_in`/`sockaddr_in6` into `storage`; returns its length.
    func write(to storage: UnsafeMutablePointer<sockaddr_storage>) -> socklen_t {
        switch ip {
        case .v4(let address):
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                pointer.pointee = sockaddr_in()
                pointer.pointee.sin_family = sa_family_t(AF_INET)
                pointer.pointee.sin_port = port.bigEndian
                pointer.pointee.sin_addr.s_addr = address.value.bigEndian
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        case .v6(let address):
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                pointer.pointee = sockaddr_in6()
                pointer.pointee.sin6_family = sa_family_t(AF_INET6)
                pointer.pointee.sin6_port = port.bigEndian
                withUnsafeMutableBytes(of: &pointer.pointee.sin6_addr) { bytes in
                    bytes.storeBytes(of: address.high.bigEndian, toByteOffset: 0, as: UInt64.self)
                    bytes.storeBytes(of: address.low.bigEndian, toByteOffset: 8, as: UInt64.self)
                }
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        }
    }

    /// The address in a `sockaddr_storage` the kernel filled, or `nil` for a family other than IPv4/IPv6.
    public init?(_ storage: UnsafePointer<sockaddr_storage>) {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let address = storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
            self.init(ip: .v4(IPv4Address(UInt32(bigEndian: address.sin_addr.s_addr))), port: UInt16(bigEndian: address.sin_port))
        case AF_INET6:
            var address = storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
            let (high, low) = withUnsafeBytes(of: &address.sin6_addr) {
                (UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            self.init(ip: .v6(IPv6Address(high: high, low: low)), port: UInt16(bigEndian: address.sin6_port))
        default:
            return nil
        }
    }
}
#endif
