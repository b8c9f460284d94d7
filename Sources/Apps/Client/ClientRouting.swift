import AppRuntime
import DnsNat
import Foundation
import Logging
import SansIO
import Tunnel

/// The TUN configuration of every `TunInterfaceUpdated` applied over rtnetlink (spec `tunnel-dns.md` §4.11):
/// the addresses as /32 and /128, the routes in Firezone's table, and one rule per family sending everything
/// without the tunnel's firewall mark to that table. Removed again on exit.
final class ClientRouting: @unchecked Sendable {
    private let netlink: RouteNetlink
    private let index: Int32
    private let table: UInt32
    private let rules: [PolicyRule]
    private let logger: Logger
    private var addresses: [IpNetwork] = []
    private var routes: Set<IpNetwork> = []
    private var rulesInstalled = false

    init(netlink: RouteNetlink, index: Int32, table: UInt32, mark: UInt32, logger: Logger) {
        self.netlink = netlink
        self.index = index
        self.table = table
        self.logger = logger
        rules = [IpVersion.v4, .v6].map { PolicyRule(family: $0, priority: 100, table: table, firewallMark: mark, invert: true) }
    }

    func apply(_ config: TunConfig) {
        let wanted = [IpNetwork(address: .v4(config.ipv4), prefixLength: 32)!, IpNetwork(address: .v6(config.ipv6), prefixLength: 128)!]
        do {
            for old in addresses where !wanted.contains(old) { try? netlink.removeAddress(old, interface: index) }
            for address in wanted { try netlink.addAddress(address, interface: index) }
            addresses = wanted
            let next = Set(config.routes)
            for gone in routes.subtracting(next) { try? netlink.removeRoute(gone, interface: index, table: table) }
            for route in next.subtracting(routes) { try netlink.addRoute(route, interface: index, table: table) }
            routes = next
            if !rulesInstalled {
                for rule in rules { try netlink.addRule(rule) }
                rulesInstalled = true
            }
            logger.info("TUN device configured", metadata: [
                "ipv4": "\(config.ipv4)", "ipv6": "\(config.ipv6)", "routes": "\(config.routes.count)",
                "dns": "\(config.dnsServers.map(\.description).joined(separator: ","))",
            ])
        } catch {
            logger.error("Failed to configure the TUN device: \(error)")
        }
    }

    func remove() {
        if rulesInstalled { for rule in rules { try? netlink.removeRule(rule) } }
        for route in routes { try? netlink.removeRoute(route, interface: index, table: table) }
        for address in addresses { try? netlink.removeAddress(address, interface: index) }
    }
}

/// "Tunnel ready" on the first interface configuration, and the end of the process there with `--exit`.
final class ReadySignal: @unchecked Sendable {
    private let exitWhenReady: Bool
    private let logger: Logger
    private let onExit: () -> Void
    private var fired = false

    init(exitWhenReady: Bool, logger: Logger, onExit: @escaping () -> Void) {
        self.exitWhenReady = exitWhenReady
        self.logger = logger
        self.onExit = onExit
    }

    func fire() {
        guard !fired else { return }
        fired = true
        logger.info("Tunnel ready")
        if exitWhenReady { onExit() }
    }
}

/// Queries for non-resources go to the system's resolvers outside the tunnel; answers come back to the loop.
final class RecursionWorker: @unchecked Sendable {
    var loop: EventLoop<ClientState>?
    private let queue = DispatchQueue(label: "firezone_headless_client.dns", attributes: .concurrent)

    func recurse(_ pending: ClientDns.PendingQuery, via upstream: DnsUpstream) {
        guard case .do53(let server) = upstream else {
            loop?.execute { state, now in state.dnsAnswered(pending, response: nil, now: now) }
            return
        }
        queue.async { [self] in
            let response = DnsExchange.udp(pending.query, with: SocketAddress(ip: server, port: 53))
            loop?.execute { state, now in state.dnsAnswered(pending, response: response, now: now) }
        }
    }
}
