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

/// Raises `net.core.rmem_max` and `wmem_max` so the 16 MiB socket buffers take effect (Firezone's values,
/// seed 004 #10349). Returns what could not be written; the caller logs it at INFO and carries on.
public enum SocketBufferLimits {
    public static let receive = 134_217_728
    public static let send = 16_777_216

    public static func raise(directory: String = "/proc/sys/net/core") -> [SystemCallError] {
        var failures: [SystemCallError] = []
        for (name, value) in [("rmem_max", receive), ("wmem_max", send)] {
            do {
                try HostFile.write("\(value)\n", to: "\(directory)/\(name)")
            } catch {
                failures.append(error)
            }
        }
        return failures
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
