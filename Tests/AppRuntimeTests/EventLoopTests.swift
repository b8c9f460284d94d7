import AppRuntime
import FlowBroker
import Foundation
import IpPacket
import Noise
import PortalMessages
import SansIO
import Synchronization
import Testing
import TestSupport
import Tunnel

/// The real ClientState and GatewayState on event loops with real TUN devices and UDP sockets, in two namespaces
/// joined by a veth pair, with coturn as the relay and an in-process portal passing their messages: the kernel's
/// ping from the client's namespace reaches a resource address behind the gateway and is answered.
@Suite("AppRuntime: event loops carry a ping between two namespaces through ClientState and GatewayState (root)")
struct EventLoopTests {
    @Test("ping through the tunnel: client TUN → WireGuard over UDP → gateway TUN → resource, and back")
    func pingThroughTheTunnel() async throws {
        let (ping, after, replacementFailure, client, gateway, flows) = try await offPool {
            let lab = try TunnelLab()
            defer { lab.tearDown() }
            try lab.start()
            let ping = try Shell.run("ip", "netns", "exec", lab.client.name, "ping", "-n", "-c", "3", "-i", "0.2", "-w", "15", "10.77.0.5",
                                     allowFailure: true)
            // A socket replacement that fails keeps the old sockets: the tunnel still carries a ping.
            let failure = Mutex<String?>(nil)
            lab.clientLoop!.replaceSockets({ throw ShellError.failed("socket", "refused by the test") }) { error in
                failure.withLock { $0 = "\(error)" }
            }
            let after = try Shell.run("ip", "netns", "exec", lab.client.name, "ping", "-n", "-c", "1", "-w", "15", "10.77.0.5",
                                      allowFailure: true)
            // A loop publishes its statistics after each batch: ping may see the last reply before that.
            lab.stopLoops()
            return (ping, after, failure.withLock { $0 }, lab.clientLoop!.statistics, lab.gatewayLoop!.statistics,
                    lab.portal.flowsAuthorized)
        }
        #expect(ping.status == 0, "ping failed: \(ping.output)")
        #expect(pingReplies(ping.output) >= 3, "\(ping.output)")
        #expect(after.status == 0 && replacementFailure == "socket failed: refused by the test", "\(after.output)")
        #expect(client.socketReplacementFailures == 1)
        #expect(client.tunPacketsRead >= 3 && client.tunPacketsWritten >= 3, "\(client)")
        #expect(gateway.tunPacketsRead >= 3 && gateway.tunPacketsWritten >= 3, "\(gateway)")
        #expect(client.refused == 0 && gateway.refused == 0 && client.sendFailures == 0, "client \(client), gateway \(gateway)")
        #expect(flows == 1)
    }

    @Test("with TUN offloads, 8 MiB go up and come back intact; the kernel's super-packets are cut and ours joined")
    func tcpThroughOffloadedDevices() async throws {
        // Alone: the end-to-end labs' downloads beside it leave the kernel fewer packets to batch per read.
        let (transfer, client, gateway, clientBuffers, gatewayBuffers) = try await offPool { try TrafficTurns.alone {
            let lab = try TunnelLab(offloads: true)
            defer { lab.tearDown() }
            try lab.start()
            let echo = try lab.startEchoServer(port: 5555)
            defer {
                kill(echo.processIdentifier, SIGKILL)
                echo.waitUntilExit()
            }
            let transfer = try Shell.run("ip", "netns", "exec", lab.client.name, "python3", "-c", Self.echoClient, allowFailure: true)
            lab.stopLoops()
            return (transfer, lab.clientLoop!.statistics, lab.gatewayLoop!.statistics,
                    lab.clientPool.buffersMade, lab.gatewayPool.buffersMade)
        } }
        #expect(transfer.status == 0 && transfer.output.contains("intact"), "\(transfer.output)")
        // Upload: the client's kernel hands over super-packets, the gateway writes joined ones; download the reverse.
        #expect(client.tunFramesRead < client.tunPacketsRead / 4, "\(client)")
        #expect(gateway.tunFramesWritten < gateway.tunPacketsWritten / 4, "\(gateway)")
        #expect(gateway.tunFramesRead < gateway.tunPacketsRead / 4, "\(gateway)")
        #expect(client.tunFramesWritten < client.tunPacketsWritten / 4, "\(client)")
        #expect(client.malformedTunPackets == 0 && gateway.malformedTunPackets == 0, "client \(client), gateway \(gateway)")
        #expect(client.refused == 0 && gateway.refused == 0, "client \(client), gateway \(gateway)")
        // Every packet buffer goes back to its loop's pool: thousands of packets, a working set of a few hundred.
        #expect(clientBuffers < 1_000 && clientBuffers < client.tunPacketsRead / 4, "\(clientBuffers) buffers for \(client)")
        #expect(gatewayBuffers < 1_000 && gatewayBuffers < gateway.tunPacketsWritten / 4, "\(gatewayBuffers) buffers for \(gateway)")
    }

    /// Sends 8 MiB of random bytes to the echo server through the tunnel and checks what comes back.
    static let echoClient = """
        import os, socket
        data = os.urandom(8 << 20)
        connection = socket.create_connection(("10.77.0.5", 5555), timeout=30)
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        back = bytearray()
        while chunk := connection.recv(1 << 16):
            back += chunk
        print("intact" if bytes(back) == data else f"changed: {len(back)} bytes came back")
        """
}

/// Two namespaces (`client` at 10.99.0.1, `gateway` at 10.99.0.2 with coturn and the resource 10.77.0.5 on its
/// loopback device), their TUN devices configured over rtnetlink, and an event loop on a thread for each side.
/// Everything here blocks; the test uses it off the concurrency pool.
final class TunnelLab: @unchecked Sendable {
    let client: TestNamespace
    let gateway: TestNamespace
    let portal = LoopbackPortal()
    private(set) var clientLoop: EventLoop<ClientState>?
    private(set) var gatewayLoop: EventLoop<GatewayState>?
    private var coturn: Process?
    private var threads: [Thread] = []
    private let finished = DispatchGroup()
    private let offloads: Bool
    /// Each loop's own pool, so a test can see how many buffers its data path needed.
    let clientPool = PacketBufferPool()
    let gatewayPool = PacketBufferPool()

    init(offloads: Bool = false) throws {
        self.offloads = offloads
        client = try TestNamespace("ec")
        gateway = try TestNamespace("eg")
        do {
            let veth = uniqueName("fzv")
            try Shell.run("ip", "link", "add", veth, "netns", client.name, "type", "veth", "peer", "name", "eth0", "netns", gateway.name)
            _ = try client.ip("link", "set", veth, "name", "eth0")
            for (namespace, address) in [(client, "10.99.0.1/24"), (gateway, "10.99.0.2/24")] {
                _ = try namespace.ip("addr", "add", address, "dev", "eth0")
                _ = try namespace.ip("link", "set", "eth0", "up")
            }
            // The resource: an address of the gateway's own namespace (this kernel has no dummy devices).
            _ = try gateway.ip("addr", "add", "10.77.0.5/32", "dev", "lo")
            if offloads {
                // TSO autosizing gives a slow flow (a busy machine) super-packets of as few as 2 segments; the offload
                // test is about cutting and joining many, so each kernel is asked for at least 16 per super-packet.
                for namespace in [client, gateway] {
                    try Shell.run("ip", "netns", "exec", namespace.name, "sysctl", "-qw", "net.ipv4.tcp_min_tso_segs=16")
                }
            }
            try startCoturn()
        } catch {
            tearDown()
            throw error
        }
    }

    private func startCoturn() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", gateway.name, "turnserver", "-n", "--listening-ip=10.99.0.2", "--listening-port=3478",
                             "--relay-ip=10.99.0.2", "--min-port=49152", "--max-port=65535", "--realm=firezone", "--lt-cred-mech",
                             "--user=fz:fz-relay-password", "--fingerprint", "--no-tls", "--no-dtls", "--no-cli", "--simple-log",
                             "--log-file=stdout"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        coturn = process
        for _ in 0..<100 {
            let listening = try Shell.run("ip", "netns", "exec", gateway.name, "ss", "-Huln", "sport", "= :3478").output
            if listening.contains("10.99.0.2:3478") { return }
            usleep(50_000)
        }
        throw ShellError.failed("coturn", "never listened on 10.99.0.2:3478")
    }

    /// A TCP server on the resource address that reads until the client stops sending, then sends it all back.
    func startEchoServer(port: Int) throws -> Process {
        let server = """
            import socket
            listener = socket.create_server(("10.77.0.5", \(port)))
            connection, _ = listener.accept()
            connection.settimeout(30)
            received = bytearray()
            while chunk := connection.recv(1 << 16):
                received += chunk
            connection.sendall(received)
            connection.close()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", gateway.name, "python3", "-c", server]
        try process.run()
        for _ in 0..<100 {
            let listening = try Shell.run("ip", "netns", "exec", gateway.name, "ss", "-Htln", "sport", "= :\(port)").output
            if listening.contains("10.77.0.5:\(port)") { return process }
            usleep(50_000)
        }
        kill(process.processIdentifier, SIGKILL)
        throw ShellError.failed("echo server", "never listened on 10.77.0.5:\(port)")
    }

    /// Creates both sides' devices, sockets and states inside their namespaces and starts the loops.
    func start() throws {
        let relay = Relay.turn(TurnRelay(id: RelayId(UUID(uuidString: "00000000-0000-4000-8000-0000000000e1")!),
                                         address: SocketAddress("10.99.0.2:3478")!, username: "fz", password: "fz-relay-password",
                                         expiresAt: 4_000_000_000))
        let portal = portal
        let offloads = offloads
        let (clientPool, gatewayPool) = (clientPool, gatewayPool)
        let gatewayLoop = try gateway.inside { () throws -> EventLoop<GatewayState> in
            let tun = try TunDevice(offloads: offloads)
            let netlink = try RouteNetlink()
            try netlink.setLink(index: tun.index, up: true, mtu: 1280)
            try netlink.addAddress(IpNetwork("100.64.0.1/32")!, interface: tun.index)
            try netlink.addRoute(IpNetwork("100.64.0.0/11")!, interface: tun.index, table: 254)
            let state = GatewayState(privateKey: LoopbackPortal.gatewayKey, now: MonotonicClock.now(),
                                     unixTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9))
            let loop = try EventLoop(plane: state, tun: tun, sockets: [try UdpSocket(bind: SocketAddress("0.0.0.0:51820")!)],
                                     pool: gatewayPool) { state, _ in
                while let message = state.pollPortalMessage() { portal.fromGateway(message) }
                while state.pollEvent() != nil {}
            }
            return loop
        }
        let clientLoop = try client.inside { () throws -> EventLoop<ClientState> in
            let tun = try TunDevice(offloads: offloads)
            let netlink = try RouteNetlink()
            try netlink.setLink(index: tun.index, up: true, mtu: 1280)
            try netlink.addAddress(IpNetwork("100.64.0.2/32")!, interface: tun.index)
            try netlink.addRoute(IpNetwork("10.77.0.0/24")!, interface: tun.index, table: 254)
            let state = ClientState(privateKey: LoopbackPortal.clientKey, now: MonotonicClock.now(),
                                    unixTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9))
            return try EventLoop(plane: state, tun: tun, sockets: [try UdpSocket(bind: SocketAddress("0.0.0.0:0")!)],
                                 pool: clientPool) { state, _ in
                while let message = state.pollPortalMessage() { portal.fromClient(message) }
                while state.pollEvent() != nil {}
            }
        }
        self.gatewayLoop = gatewayLoop
        self.clientLoop = clientLoop
        portal.connect(client: clientLoop, gateway: gatewayLoop)
        let loops: [@Sendable () -> Void] = [{ gatewayLoop.run() }, { clientLoop.run() }]
        for loop in loops {
            finished.enter()
            let thread = Thread { [finished] in
                loop()
                finished.leave()
            }
            threads.append(thread)
            thread.start()
        }
        gatewayLoop.execute { state, now in
            state.handle(.initialize(GatewayInit(interface: GatewayInterface(ipv4: LoopbackPortal.gatewayIpv4, ipv6: LoopbackPortal.gatewayIpv6),
                                                 relays: [relay])), now: now)
        }
        clientLoop.execute { state, now in
            let interface = ClientInterface(ipv4: LoopbackPortal.clientIpv4, ipv6: LoopbackPortal.clientIpv6)
            state.handle(.initialize(ClientInit(interface: interface, resources: [LoopbackPortal.clientResource], relays: [relay])), now: now)
        }
    }

    /// Stops both event loops and waits for their threads: their statistics are final afterwards.
    func stopLoops() {
        clientLoop?.stop()
        gatewayLoop?.stop()
        if !threads.isEmpty { _ = finished.wait(timeout: .now() + 5) }
    }

    func tearDown() {
        stopLoops()
        clientLoop = nil
        gatewayLoop = nil
        if let coturn {
            // Foundation starts children with every signal blocked, so only SIGKILL ends coturn.
            kill(coturn.processIdentifier, SIGKILL)
            coturn.waitUntilExit()
        }
        client.remove()
        gateway.remove()
    }
}

/// The portal's part for one client and one gateway, passing messages between their loops: `create_flow`
/// becomes `authorize_flow`, `flow_authorized` becomes `flow_created`, candidates are relayed.
final class LoopbackPortal: @unchecked Sendable {
    static let clientKey = SecretKey(bytes: [UInt8](repeating: 0x41, count: 32))!
    static let gatewayKey = SecretKey(bytes: [UInt8](repeating: 0x42, count: 32))!
    static let clientId = ClientId(UUID(uuidString: "00000000-0000-4000-8000-0000000000c1")!)
    static let gatewayId = GatewayId(UUID(uuidString: "00000000-0000-4000-8000-0000000000d1")!)
    static let site = Site(id: SiteId(UUID(uuidString: "00000000-0000-4000-8000-0000000000a1")!), name: "lab")
    static let resourceId = ResourceId("00000000-0000-4000-8000-0000000000b1")!
    static let clientIpv4 = IPv4Address(100, 64, 0, 2)
    static let clientIpv6 = IPv6Address("fd00:2021:1111::2")!
    static let gatewayIpv4 = IPv4Address(100, 64, 0, 1)
    static let gatewayIpv6 = IPv6Address("fd00:2021:1111::1")!
    static let clientResource = ClientResource.cidr(.init(id: resourceId, address: IpNetwork("10.77.0.0/24")!, name: "lab", sites: [site]))
    static let gatewayResource = GatewayResource.cidr(id: resourceId, address: IpNetwork("10.77.0.0/24")!, name: "lab", filters: [])
    static let presharedKey = PresharedKey(WireGuardKey(bytes: [UInt8](repeating: 7, count: 32))!)
    static let credentials = (client: IceCredentials(ufrag: "lcli", password: "loopback-client-ice-password"),
                              gateway: IceCredentials(ufrag: "lgwy", password: "loopback-gateway-ice-password"))

    private var clientLoop: EventLoop<ClientState>?
    private var gatewayLoop: EventLoop<GatewayState>?
    /// The loops' threads call in; the broker is theirs in turn.
    private let lock = NSLock()
    private var broker = FlowBroker(random: SplitMix64(seed: 5))
    private var authorized = 0

    var flowsAuthorized: Int { lock.withLock { authorized } }

    func connect(client: EventLoop<ClientState>, gateway: EventLoop<GatewayState>) {
        clientLoop = client
        gatewayLoop = gateway
        lock.withLock {
            broker.clientJoined(FlowBroker.Client(id: Self.clientId, actor: "lab", publicKey: WireGuardKey(bytes: Self.clientKey.publicKey.bytes)!,
                                                  ipv4: Self.clientIpv4, ipv6: Self.clientIpv6))
            broker.gatewayJoined(FlowBroker.Gateway(id: Self.gatewayId, publicKey: WireGuardKey(bytes: Self.gatewayKey.publicKey.bytes)!,
                                                    site: Self.site.id, ipv4: Self.gatewayIpv4, ipv6: Self.gatewayIpv6))
        }
    }

    func fromClient(_ message: ClientEgress) {
        let outputs = lock.withLock {
            broker.handle(message, from: Self.clientId, policy: Policy(), unixTime: 0)
            return drainBroker()
        }
        deliver(outputs)
    }

    func fromGateway(_ message: GatewayEgress) {
        let outputs = lock.withLock {
            if broker.handle(message, from: Self.gatewayId) == .ok { authorized += 1 }
            return drainBroker()
        }
        deliver(outputs)
    }

    private func drainBroker() -> [FlowBroker.Output] {
        var outputs: [FlowBroker.Output] = []
        while let output = broker.pollOutput() { outputs.append(output) }
        return outputs
    }

    private func deliver(_ outputs: [FlowBroker.Output]) {
        for output in outputs {
            switch output {
            case .toClient(_, let message): clientLoop?.execute { state, now in state.handle(message, now: now) }
            case .toGateway(_, let message): gatewayLoop?.execute { state, now in state.handle(message, now: now) }
            }
        }
    }

    /// The lab's one resource and one pair of secrets.
    private struct Policy: FlowPolicy {
        func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource? {
            id == LoopbackPortal.resourceId ? BrokeredResource(sites: [LoopbackPortal.site.id], gatewayView: LoopbackPortal.gatewayResource) : nil
        }

        func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway, resource: ResourceId, unixTime: Int64,
                 expiresAt: Int64?) -> FlowSecrets {
            FlowSecrets(presharedKey: LoopbackPortal.presharedKey, client: LoopbackPortal.credentials.client,
                        gateway: LoopbackPortal.credentials.gateway)
        }

        var accessLifetime: Duration? { nil }
    }
}
