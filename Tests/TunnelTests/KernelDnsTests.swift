import CLinuxTun
import Dns
import Foundation
import IpPacket
import Noise
import PortalMessages
import SansIO
import TestSupport
import Testing
@testable import Tunnel

/// The client's DNS answered to the Linux kernel's own UDP and TCP: `dig` in a network namespace asks the
/// sentinel through a TUN device whose packets this test feeds to a real ``ClientState``.
@Suite("ClientState: dig over UDP and TCP through a TUN device", .serialized, .offPool)
struct KernelDnsTests {
    static let web = ResourceId("bbbbbbbb-0000-4000-8000-000000000002")!
    /// What the "upstream" says for names outside every resource (the app's recursion, played by the pump).
    static let upstreamAnswer = IPv4Address(192, 0, 2, 44)

    @Test("A records of a DNS resource over UDP and TCP are the same proxy IPs; recursion and pipelining over TCP work")
    func digAgainstTheSentinel() throws {
        try #require(getuid() == 0, "this test creates a network namespace and a TUN device and needs root")
        let lab = try TunLab()
        defer { lab.tearDown() }
        let overUdp = try lab.dig("app.example.com")
        let overTcp = try lab.dig("+tcp", "app.example.com")
        #expect(overUdp.count == 4 && overUdp.allSatisfy { $0.hasPrefix("100.96.0.") }, "got \(overUdp)")
        #expect(overTcp == overUdp, "TCP must see the same proxy IPs as UDP")
        #expect(try lab.dig("+tcp", "www.other.org") == ["192.0.2.44"], "a recursed answer comes back on the TCP connection")
        // Three queries pipelined on one connection.
        let pipelined = try lab.dig("+tcp", "+keepopen", "app.example.com", "db.example.com", "www.other.org")
        #expect(pipelined.count == 9, "got \(pipelined)")
        #expect(Array(pipelined.prefix(4)) == overUdp)
        let (connections, accepted, aborted) = lab.pump.tcpStatistics()
        #expect(accepted == 3, "one connection per dig +tcp")
        #expect(aborted == 0, "no connection was reset")
        #expect(connections == 0, "every connection closed with FIN in both directions")
        #expect(lab.pump.recursions() == 1, "the second www.other.org came from the DNS cache")
    }

    @Test("an answer too big for UDP is truncated; dig retries over TCP and gets it whole, in several segments")
    func truncatedAnswerRetriedOverTcp() throws {
        try #require(getuid() == 0, "this test creates a network namespace and a TUN device and needs root")
        let lab = try TunLab()
        defer { lab.tearDown() }
        let answers = try lab.dig("big.other.org")
        #expect(answers.count == TunPump.bigAnswerCount, "got \(answers.count) records")
        #expect(Set(answers).count == TunPump.bigAnswerCount)
        #expect(lab.pump.tcpStatistics().accepted == 1, "the retry came over TCP")
        #expect(lab.pump.tcpStatistics().aborted == 0)
    }
}

/// A namespace with a TUN device routed to the sentinels, and the thread that serves it.
final class TunLab {
    let namespace = "fzdns\(getpid() % 100_000)"
    let device = "fzdns\(getpid() % 100_000)"
    let pump: TunPump

    init() throws {
        _ = try? Shell.run("ip", "netns", "del", namespace, allowFailure: true)
        let fd = try Self.openTun(device)
        do {
            try Shell.run("ip", "netns", "add", namespace)
            try Shell.run("ip", "link", "set", device, "netns", namespace)
            try Shell.run("ip", "-n", namespace, "link", "set", "lo", "up")
            try Shell.run("ip", "-n", namespace, "link", "set", device, "mtu", "1280", "up")
            try Shell.run("ip", "-n", namespace, "addr", "add", "100.64.0.2/32", "dev", device)
            try Shell.run("ip", "-n", namespace, "route", "add", "100.100.111.0/24", "dev", device)
            pump = try TunPump(fd: fd)
        } catch {
            // Nothing may be left behind when setting up fails half way.
            close(fd)
            _ = try? Shell.run("ip", "netns", "del", namespace, allowFailure: true)
            throw error
        }
        pump.start()
    }

    /// `dig +short` in the namespace against the first sentinel; the answer lines.
    func dig(_ arguments: String...) throws -> [String] {
        let output = try Shell.run(["ip", "netns", "exec", namespace, "dig", "+short", "+tries=1", "+time=3", "@100.100.111.1"] + arguments)
        return output.output.split(separator: "\n").map(String.init)
    }

    func tearDown() {
        pump.stop()
        _ = try? Shell.run("ip", "netns", "del", namespace, allowFailure: true)
    }

    static func openTun(_ name: String) throws -> Int32 {
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        try #require(fd >= 0, "open /dev/net/tun: \(String(cString: strerror(errno)))")
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: Array(name.utf8.prefix(15))) }
        request.ifr_ifru.ifru_flags = Int16(IFF_TUN | IFF_NO_PI)
        try #require(ioctl(fd, UInt(ctun_TUNSETIFF()), &request) >= 0, "TUNSETIFF: \(String(cString: strerror(errno)))")
        return fd
    }
}

/// Owns a ``ClientState`` and a TUN file descriptor on one thread: packets in, answers out, the app's
/// recursion answered with ``KernelDnsTests/upstreamAnswer``. Other threads only start, stop and read counters.
final class TunPump: @unchecked Sendable {
    /// Records in the answer for `big.*`: about 2 KB, more than a UDP answer (1212 bytes) or one TCP segment.
    static let bigAnswerCount = 120
    private let fd: Int32
    private let state: ClientState
    private let clock = TestClock()
    private let lock = NSLock()
    private var stopping = false
    private var recursionCount = 0
    private let finished = DispatchSemaphore(value: 0)

    init(fd: Int32) throws {
        self.fd = fd
        state = ClientState(privateKey: SecretKey(bytes: [UInt8](repeating: 9, count: 32))!, now: clock.now,
                            unixTimeNanoseconds: 1_700_000_000_000_000_000)
        let site = Site(id: SiteId(UUID(uuidString: "77777777-2222-3333-4444-555555555555")!), name: "site")
        let interface = ClientInterface(ipv4: IPv4Address(100, 64, 0, 2), ipv6: IPv6Address("fd00:2021:1111::2")!,
                                        upstreamDo53: [Do53Upstream(ip: IpAddress("1.1.1.1")!)])
        let web = ClientResource.dns(.init(id: KernelDnsTests.web, address: "*.example.com", name: "web", sites: [site], ipStack: .dual))
        state.handle(.initialize(ClientInit(interface: interface, resources: [web], relays: [])), now: clock.now)
        try #require(state.tunConfig?.dnsServers.first == IpAddress("100.100.111.1")!)
    }

    func start() {
        Thread { self.run() }.start()
    }

    func stop() {
        lock.withLock { stopping = true }
        finished.wait()
        close(fd)
    }

    func recursions() -> Int { lock.withLock { recursionCount } }

    func tcpStatistics() -> (connections: Int, accepted: Int, aborted: Int) {
        lock.withLock { (state.dns.tcpServer.connectionCount, state.dns.tcpServer.acceptedCount, state.dns.tcpServer.abortedCount) }
    }

    private func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer {
            buffer.deallocate()
            finished.signal()
        }
        while !lock.withLock({ stopping }) {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 20)
            lock.lock()
            defer { lock.unlock() }
            if ready > 0 {
                let count = read(fd, buffer.baseAddress, buffer.count)
                if count > 0, let packet = try? IpPacket(copying: UnsafeRawBufferPointer(rebasing: buffer[0..<count])) {
                    _ = try? state.handleTunPacket(packet, into: buffer, now: clock.now)
                }
            }
            if let deadline = state.pollTimeout(), deadline <= clock.now { state.handleTimeout(now: clock.now) }
            while let event = state.pollEvent() {
                guard case .recurseDns(let pending, _) = event else { continue }
                recursionCount += 1
                var response = DnsMessage.response(to: pending.query, rcode: .noError)
                let name = pending.query.questions[0].name
                response.answers = name.description.hasPrefix("big")
                    ? (0..<Self.bigAnswerCount).map { DnsRecord(name: name, ttl: 60, data: .a(IPv4Address(198, 18, UInt8($0 / 250), UInt8($0 % 250)))) }
                    : [DnsRecord(name: name, ttl: 60, data: .a(KernelDnsTests.upstreamAnswer))]
                state.dnsAnswered(pending, response: response, now: clock.now)
            }
            while let packet = state.pollTunPacket() {
                _ = packet.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
        }
    }
}
