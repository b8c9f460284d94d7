// A WireGuard peer on a real TUN device and UDP socket, driven by the Noise library: the counterpart of
// wireguard-go in the interop tests. Single-threaded poll() loop; SIGUSR1 forces a new handshake, SIGTERM
// and SIGINT stop it. Prints "ready" once the TUN device and the socket exist.
//
//   WireGuardInteropPeer --tun NAME --listen-port PORT --private-key-file F --peer-public-key B64
//                        [--preshared-key-file F] [--endpoint IPv4:PORT]
import CLinuxTun
import Glibc
import Noise
import SansIO

nonisolated(unsafe) var rekeyRequested: sig_atomic_t = 0
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

/// One line to standard output, unbuffered, so the test sees it at once.
func say(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    var text = "WireGuardInteropPeer: \(message)\n"
    text.withUTF8 { _ = Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(1)
}

struct Options {
    var tun = ""
    var listenPort: UInt16 = 0
    var privateKeyFile = ""
    var peerPublicKey = ""
    var presharedKeyFile: String?
    var endpoint: sockaddr_in?

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fail("\(flag) needs a value") }
            switch flag {
            case "--tun": tun = value
            case "--listen-port": listenPort = UInt16(value) ?? 0
            case "--private-key-file": privateKeyFile = value
            case "--peer-public-key": peerPublicKey = value
            case "--preshared-key-file": presharedKeyFile = value
            case "--endpoint": endpoint = parseEndpoint(value)
            default: fail("unknown flag \(flag)")
            }
        }
        guard !tun.isEmpty, listenPort != 0, !privateKeyFile.isEmpty, !peerPublicKey.isEmpty else {
            fail("--tun, --listen-port, --private-key-file and --peer-public-key are required")
        }
    }
}

func parseEndpoint(_ text: String) -> sockaddr_in {
    let parts = text.split(separator: ":")
    guard parts.count == 2, let port = UInt16(parts[1]) else { fail("bad endpoint \(text)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, String(parts[0]), &address.sin_addr) == 1 else { fail("bad endpoint \(text)") }
    return address
}

func readKey(_ path: String) -> SecretKey {
    guard let file = fopen(path, "r") else { fail("cannot open \(path)") }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 128)
    guard fgets(&line, 128, file) != nil else { fail("cannot read \(path)") }
    let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let key = SecretKey(base64: text.trimmingCharacters(in: " \n")) else { fail("\(path) holds no base64 key") }
    return key
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        String(self.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

func openTun(_ name: String) -> Int32 {
    let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { fail("open /dev/net/tun: \(String(cString: strerror(errno)))") }
    var request = ifreq()
    withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: Array(name.utf8.prefix(15))) }
    request.ifr_ifru.ifru_flags = Int16(IFF_TUN | IFF_NO_PI)
    guard ioctl(fd, UInt(ctun_TUNSETIFF()), &request) >= 0 else { fail("TUNSETIFF: \(String(cString: strerror(errno)))") }
    return fd
}

func openSocket(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { fail("socket") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { fail("bind: \(String(cString: strerror(errno)))") }
    return fd
}

func endpointKey(_ address: sockaddr_in) -> EndpointKey {
    var bytes = withUnsafeBytes(of: address.sin_addr) { Array($0) }
    bytes += withUnsafeBytes(of: address.sin_port) { Array($0) }
    return EndpointKey(bytes)
}

/// CLOCK_MONOTONIC as the library's `Instant`.
struct MonotonicClock {
    var now: Instant {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Instant(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }
}

func run() {
    let options = Options(CommandLine.arguments)
    let clock = MonotonicClock()
    var unixTime = timespec()
    clock_gettime(CLOCK_REALTIME, &unixTime)
    let identity = WireGuardIdentity(privateKey: readKey(options.privateKeyFile))
    guard let peerKey = PublicKey(base64: options.peerPublicKey) else { fail("bad peer public key") }
    let tunnel = WireGuardTunnel(
        identity: identity, remotePublicKey: peerKey, presharedKey: options.presharedKeyFile.map(readKey),
        connectionIndex: 0x5A5A, now: clock.now,
        unixTimeNanoseconds: Int64(unixTime.tv_sec) * 1_000_000_000 + Int64(unixTime.tv_nsec))
    let tunFd = openTun(options.tun)
    let udpFd = openSocket(port: options.listenPort)
    var endpoint = options.endpoint
    signal(SIGUSR1) { _ in rekeyRequested = 1 }
    signal(SIGTERM) { _ in stopRequested = 1 }
    signal(SIGINT) { _ in stopRequested = 1 }
    // A parent may start us with signals blocked (Foundation's Process does); we handle these three.
    var handled = sigset_t()
    sigemptyset(&handled)
    for signalNumber in [SIGUSR1, SIGTERM, SIGINT] { sigaddset(&handled, signalNumber) }
    sigprocmask(SIG_UNBLOCK, &handled, nil)
    say("ready")

    let bufferSize = 2048
    let inbound = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
    let outbound = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
    defer {
        inbound.deallocate()
        outbound.deallocate()
    }

    func send(_ count: Int) {
        guard var destination = endpoint else { return }
        _ = withUnsafePointer(to: &destination) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(udpFd, outbound.baseAddress, count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    func flush() {
        let now = clock.now
        tunnel.handleTimeout(now: now)
        while let count = tunnel.pollTransmit(into: outbound, now: now) { send(count) }
        while let event = tunnel.pollEvent() {
            say("event \(event)")
        }
    }

    var fds = [pollfd(fd: tunFd, events: Int16(POLLIN), revents: 0), pollfd(fd: udpFd, events: Int16(POLLIN), revents: 0)]
    while stopRequested == 0 {
        if rekeyRequested != 0 {
            rekeyRequested = 0
            say("forcing handshake: \(tunnel.initiateHandshake(now: clock.now))")
        }
        flush()
        let timeout = tunnel.pollTimeout().map { deadline -> Int32 in
            Int32(clamping: max(0, (deadline.nanoseconds - clock.now.nanoseconds) / 1_000_000) + 1)
        } ?? 1000
        guard poll(&fds, 2, min(timeout, 1000)) >= 0 || errno == EINTR else { fail("poll") }
        if fds[0].revents & Int16(POLLIN) != 0 {
            let count = read(tunFd, inbound.baseAddress, bufferSize)
            if count > 0 {
                let result = tunnel.encapsulate(UnsafeRawBufferPointer(rebasing: inbound[0..<count]), into: outbound, now: clock.now)
                if case .writeToNetwork(let length) = result { send(length) }
            }
        }
        if fds[1].revents & Int16(POLLIN) != 0 {
            var source = sockaddr_in()
            var sourceLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let count = withUnsafeMutablePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(udpFd, inbound.baseAddress, bufferSize, 0, $0, &sourceLength)
                }
            }
            if count > 0 {
                let result = tunnel.decapsulate(UnsafeRawBufferPointer(rebasing: inbound[0..<count]),
                                                from: endpointKey(source), into: outbound, now: clock.now)
                switch result {
                case .writeToNetwork(let length):
                    endpoint = source
                    send(length)
                case let .writeToTunnel(offset, length):
                    endpoint = source
                    _ = Glibc.write(tunFd, outbound.baseAddress.map { $0 + offset }, length)
                case .done:
                    endpoint = source
                case .error(let error):
                    say("error \(error)")
                }
            }
        }
    }
    say("statistics \(tunnel.statistics)")
    say("stopped")
}

run()
