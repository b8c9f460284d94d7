#if canImport(Glibc)
import Glibc
import SansIO

/// Whether the process may configure the network: root, or `CAP_NET_ADMIN` in its effective set.
public enum Privileges {
    public static func mayAdministerNetwork(status: String? = try? HostFile.read("/proc/self/status")) -> Bool {
        if geteuid() == 0 { return true }
        guard let line = status?.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }, radix: 16)
        else { return false }
        return mask & (1 << 12) != 0  // CAP_NET_ADMIN
    }
}

/// The nameservers of a `resolv.conf`, in order: what the gateway resolves DNS resources with.
public enum ResolvConf {
    public static func nameservers(in text: String) -> [IpAddress] {
        text.split(separator: "\n").compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            // A scoped IPv6 address (fe80::1%eth0) keeps its address without the scope.
            return IpAddress(words[1].split(separator: "%").first ?? words[1])
        }
    }

    public static func nameservers(path: String = "/etc/resolv.conf") throws(SystemCallError) -> [IpAddress] {
        nameservers(in: try HostFile.read(path))
    }
}

/// The UDP socket buffers the tunnel asks for: Firezone's 16 MiB to send and 128 MiB to receive (spec
/// `snownet.md` §6), or what `FIREZONE_UDP_SEND_BUFFER_SIZE` / `FIREZONE_UDP_RECV_BUFFER_SIZE` say (#10234).
public struct SocketBufferSizes: Equatable, Sendable {
    public var send: Int
    public var receive: Int

    public init(send: Int = 16 * 1024 * 1024, receive: Int = 128 * 1024 * 1024) {
        self.send = send
        self.receive = receive
    }
}

/// Raises `net.core.rmem_max` and `wmem_max` so the requested socket buffers take effect without
/// `CAP_NET_ADMIN`'s forced sizes (seed #10349). A limit already as high is left alone, never lowered.
public enum SocketBufferLimits {
    /// What became of one limit; the apps log each at INFO and carry on whatever happened.
    public enum Outcome: Equatable, Sendable, CustomStringConvertible {
        case raised(name: String, to: Int)
        case alreadyEnough(name: String, current: Int)
        case failed(name: String, SystemCallError)

        public var description: String {
            switch self {
            case let .raised(name, value): "Set `core.\(name)` to \(value)"
            case let .alreadyEnough(name, current): "`core.\(name)` is already \(current)"
            case let .failed(name, error): "Failed to increase `core.\(name)`: \(error)"
            }
        }
    }

    public static func raise(to sizes: SocketBufferSizes = SocketBufferSizes(),
                             directory: String = "/proc/sys/net/core") -> [Outcome] {
        [("rmem_max", sizes.receive), ("wmem_max", sizes.send)].map { name, value in
            let path = "\(directory)/\(name)"
            if let text = try? HostFile.read(path),
               let current = Int(text.filter { !$0.isWhitespace }), current >= value {
                return .alreadyEnough(name: name, current: current)
            }
            do throws(SystemCallError) {
                try HostFile.write("\(value)\n", to: path)
                return .raised(name: name, to: value)
            } catch {
                return .failed(name: name, error)
            }
        }
    }
}

/// Small files of the system (`/proc`, `/etc`), read and written whole.
public enum HostFile {
    public static func read(_ path: String) throws(SystemCallError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count >= 0 else { throw .last("read \(path)") }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func write(_ text: String, to path: String) throws(SystemCallError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw .last("write \(path)") }
    }

    /// Creates or truncates `path`, writes `text` and waits for it to reach the disk. Written in place, not
    /// renamed over, so a bind-mounted file (containers, `ip netns exec`) works too.
    public static func writeDurably(_ text: String, to path: String, mode: mode_t = 0o644) throws(SystemCallError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw .last("write \(path)") }
        guard fsync(fd) == 0 else { throw .last("fsync \(path)") }
    }
}
#endif
