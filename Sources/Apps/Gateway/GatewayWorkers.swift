import AppRuntime

import Foundation
import Logging
import SansIO
import Tunnel

/// Work the event loop must not wait for: resolving DNS resources' domains with the system resolver (which reads
/// `/etc/resolv.conf`) and forwarding clients' queries to the TUN DNS server to the fastest nameserver. Answers
/// go back to the loop with ``EventLoop/execute(_:)``.
final class GatewayWorkers: @unchecked Sendable {
    private let nameservers: NameserverSet
    private let logger: Logger
    private let queue = DispatchQueue(label: "firezone_gateway.dns", attributes: .concurrent)
    /// Set once, before the loop runs.
    var loop: EventLoop<GatewayState>?

    init(nameservers: NameserverSet, logger: Logger) {
        self.nameservers = nameservers
        self.logger = logger
    }

    func resolve(_ request: GatewayResolveRequest) {
        let domain = request.request.domain.description
        queue.async { [self] in
            let result: Result<[IpAddress], any Error> = Result { try Self.addresses(of: domain) }
            loop?.execute { state, now in state.resolved(request, result: result, now: now) }
        }
    }

    func forward(_ query: GatewayDnsQuery) {
        guard let nameserver = nameservers.fastest else {
            loop?.execute { state, now in state.dnsAnswered(query, response: nil, now: now) }
            return
        }
        queue.async { [self] in
            let response = DnsExchange.udp(query.query, with: SocketAddress(ip: nameserver, port: 53))
            loop?.execute { state, now in state.dnsAnswered(query, response: response, now: now) }
        }
    }

    struct ResolutionFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// `getaddrinfo`'s IPv4 and IPv6 addresses of `domain`, without duplicates.
    static func addresses(of domain: String) throws -> [IpAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(domain, nil, &hints, &list)
        guard status == 0 else { throw ResolutionFailed(description: "\(domain): \(String(cString: gai_strerror(status)))") }
        defer { freeaddrinfo(list) }
        var addresses: [IpAddress] = []
        var entry = list
        while let current = entry {
            if let address = current.pointee.ai_addr, let ip = Self.ip(address), !addresses.contains(ip) { addresses.append(ip) }
            entry = current.pointee.ai_next
        }
        return addresses
    }

    private static func ip(_ address: UnsafeMutablePointer<sockaddr>) -> IpAddress? {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { bytes in
            let length = address.pointee.sa_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
            bytes.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
        }
        return withUnsafePointer(to: &storage) { SocketAddress($0)?.ip }
    }
}

/// Sets the TUN device's addresses and the tunnel ranges' routes when the portal's `init` names them, and
/// removes them on exit.
final class InterfaceConfigurator: @unchecked Sendable {
    private let netlink: RouteNetlink
    private let index: Int32
    private let logger: Logger
    private var applied: [IpNetwork] = []

    init(netlink: RouteNetlink, index: Int32, logger: Logger) {
        self.netlink = netlink
        self.index = index
        self.logger = logger
    }

    func apply(ipv4: IPv4Address, ipv6: IPv6Address) {
        let addresses = [IpNetwork(address: .v4(ipv4), prefixLength: 32)!, IpNetwork(address: .v6(ipv6), prefixLength: 128)!]
        for old in applied where !addresses.contains(old) { try? netlink.removeAddress(old, interface: index) }
        do {
            for address in addresses { try netlink.addAddress(address, interface: index) }
            for range in GatewayService.tunnelRanges { try netlink.addRoute(range, interface: index, table: 254) }
            applied = addresses
            logger.info("TUN device configured", metadata: ["ipv4": "\(ipv4)", "ipv6": "\(ipv6)"])
        } catch {
            logger.error("Failed to configure the TUN device: \(error)")
        }
    }

    func remove() {
        for range in GatewayService.tunnelRanges { try? netlink.removeRoute(range, interface: index, table: 254) }
        for address in applied { try? netlink.removeAddress(address, interface: index) }
    }
}
