import AppRuntime
import Foundation
import IpPacket
import SansIO
import Testing
import TestSupport

/// The TUN device and rtnetlink configuration of spec `tunnel-dns.md` §4.11 in a namespace of its own, read
/// back with iproute2 (an independent reader of the same kernel state) and exercised by the kernel's ping.
@Suite("AppRuntime: TUN device and rtnetlink in a network namespace (root)")
struct RouteNetlinkTests {
    static let table: UInt32 = 0x2021_FD00
    static let mark: UInt32 = 0xFD00_2021
    static let ipv4 = IpNetwork("100.64.0.2/32")!
    static let ipv6 = IpNetwork("fd00:2021:1111::2/128")!
    static let routes = [IpNetwork("10.0.0.0/24")!, IpNetwork("2001:db8:5::/64")!]
    static let rules = [IpVersion.v4, .v6].map { PolicyRule(family: $0, priority: 100, table: table, firewallMark: mark, invert: true) }

    @Test("link, addresses, routes and policy rules are set, read back by ip, carry a ping, and are removed")
    func configureAndRemove() async throws {
        let (report, after) = try await TestNamespace.with("rt") { namespace in
            let report = try namespace.inside { () throws -> String in
            let tun = try TunDevice()
            let netlink = try RouteNetlink()
            try netlink.setLink(index: tun.index, up: true, mtu: 1280, transmitQueueLength: 10_000)
            try netlink.addAddress(Self.ipv4, interface: tun.index)
            try netlink.addAddress(Self.ipv6, interface: tun.index)
            for route in Self.routes { try netlink.addRoute(route, interface: tun.index, table: Self.table) }
            for rule in Self.rules { try netlink.addRule(rule) }
            let configured = try Self.readBack(namespace)
            let ping = try Self.answerOnePing(through: tun, namespace: namespace)
            for rule in Self.rules { try netlink.removeRule(rule) }
            for route in Self.routes { try netlink.removeRoute(route, interface: tun.index, table: Self.table) }
            try netlink.removeAddress(Self.ipv4, interface: tun.index)
            try netlink.removeAddress(Self.ipv6, interface: tun.index)
            try netlink.setLink(index: tun.index, up: false)
            let removed = try Self.readBack(namespace)
            return "configured:\n\(configured)\nping: \(ping)\nremoved:\n\(removed)"
            }
            return (report, try namespace.ip("link", "show"))
        }
        let parts = report.components(separatedBy: "\nremoved:\n")
        let configured = parts[0], removed = parts[1]
        #expect(configured.contains("mtu 1280") && configured.contains("qlen 10000") && configured.contains(",UP,"), "\(configured)")
        #expect(configured.contains("inet 100.64.0.2/32") && configured.contains("inet6 fd00:2021:1111::2/128"))
        #expect(configured.contains("10.0.0.0/24 dev tun-firezone") && configured.contains("2001:db8:5::/64 dev tun-firezone"))
        #expect(configured.components(separatedBy: "100:\tnot from all fwmark 0xfd002021 lookup 539098368").count == 3,
                "one rule per family: \(configured)")
        #expect(report.contains("ping: echo request 100.64.0.2 -> 10.0.0.5 answered, ping exit 0"), "\(report)")
        #expect(!removed.contains("100.64.0.2") && !removed.contains("fd00:2021:1111::2") && !removed.contains("fwmark"), "\(removed)")
        #expect(!removed.contains("10.0.0.0/24") && !removed.contains("2001:db8:5::/64") && !removed.contains(",UP,"))
        #expect(!after.contains("tun-firezone"), "the device goes with its file descriptor: \(after)")
    }

    @Test("the kernel's refusals are typed errors that name the operation")
    func refusals() async throws {
        let outcomes = try await TestNamespace.with("re") { namespace in try namespace.inside { () throws -> [String] in
            let netlink = try RouteNetlink()
            var outcomes: [String] = []
            do {
                try netlink.addRoute(Self.routes[0], interface: 9_999, table: Self.table)
            } catch let error as NetlinkError {
                outcomes.append(error == .refused(operation: "add route 10.0.0.0/24 table 539098368", errno: ENODEV) ? "ENODEV" : "\(error)")
            }
            try netlink.addRule(Self.rules[0])
            do {
                try netlink.addRule(Self.rules[0])
            } catch let error as NetlinkError {
                outcomes.append(error == .refused(operation: "add rule priority 100", errno: EEXIST) ? "EEXIST \(error)" : "\(error)")
            }
            do {
                _ = try TunDevice(name: "a-name-much-too-long")
            } catch let error as SystemCallError {
                outcomes.append(error.errno == EINVAL ? "EINVAL \(error)" : "\(error)")
            }
            return outcomes
        } }
        #expect(outcomes.count == 3)
        #expect(outcomes.first == "ENODEV")
        #expect(outcomes.dropFirst().first == "EEXIST netlink add rule priority 100: File exists")
        #expect(outcomes.last == "EINVAL TUN device name 'a-name-much-too-long': Invalid argument")
    }

    /// The interface, its addresses, Firezone's table for both families and the policy rules, as `ip` prints them.
    static func readBack(_ namespace: TestNamespace) throws -> String {
        try [
            namespace.ip("-d", "link", "show", "tun-firezone"), namespace.ip("addr", "show", "dev", "tun-firezone"),
            namespace.ip("route", "show", "table", "\(table)"), namespace.ip("-6", "route", "show", "table", "\(table)"),
            namespace.ip("rule", "show"), namespace.ip("-6", "rule", "show"),
        ].joined(separator: "\n")
    }

    /// Starts `ping 10.0.0.5` in the namespace, reads the echo request from the TUN device (the rule and the
    /// table route it there), writes the echo reply back, and waits for ping's verdict.
    static func answerOnePing(through tun: TunDevice, namespace: TestNamespace) throws -> String {
        let ping = Process()
        ping.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ping.arguments = ["ip", "netns", "exec", namespace.name, "ping", "-n", "-c", "1", "-W", "5", "10.0.0.5"]
        ping.standardOutput = FileHandle.nullDevice
        try ping.run()
        defer { ping.waitUntilExit() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        var descriptor = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, 5_000) > 0 {
            while let count = try tun.read(into: buffer) {
                guard let packet = try? IpPacket(copying: Array(buffer[0..<count])), packet.isIcmpv4,
                      case .icmpEcho(let identifier)? = try? packet.sourceKey, packet.icmp?.type == 8 else { continue }
                let reply = try IpPacket.icmpEchoReply(source: packet.destination, destination: packet.source,
                                                       identifier: identifier, sequence: 1, payload: Array(packet.bytes[(packet.transportOffset + 8)...]))
                reply.bytes.withUnsafeBytes { _ = try? tun.write($0) }
                ping.waitUntilExit()
                return "echo request \(packet.source) -> \(packet.destination) answered, ping exit \(ping.terminationStatus)"
            }
        }
        return "no echo request arrived on the TUN device"
    }
}
