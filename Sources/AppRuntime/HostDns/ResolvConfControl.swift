#if canImport(Glibc)
import Glibc
import SansIO

/// `--dns-control etc-resolv-conf` (spec `tunnel-dns.md` §4.11, Firezone's `etc_resolv_conf.rs`): backs up
/// `/etc/resolv.conf`, rewrites it in place with the tunnel's DNS sentinels, the search domain and `ndots:1`,
/// and restores the backup on exit. A file still starting with ``magicHeader`` means the last run crashed
/// before restoring it; the backup is restored first.
///
/// Both files are written in place rather than renamed over, because containers and `ip netns exec`
/// bind-mount them; the backup reaches the disk before the file changes, so a crash in between leaves the
/// original untouched. Deliberate deviation from Firezone: ``revert()`` restores the backup only while the file is
/// still ours (starts with the header). Firezone copies the backup whenever one exists, and since it never
/// deletes it, a client started after a clean exit would put back a stale copy over the user's newer file.
public struct ResolvConfControl: Sendable {
    public static let magicHeader = "# BEGIN Firezone DNS configuration"

    public let path: String
    public let backupPath: String

    public init(path: String = "/etc/resolv.conf", backupPath: String = "/etc/resolv.conf.before-firezone") {
        self.path = path
        self.backupPath = backupPath
    }

    /// Points the system at `nameservers`. Returns `false` and leaves the file alone when there are none
    /// (Firezone logs a warning then).
    @discardableResult
    public func configure(nameservers: [IpAddress], searchDomain: String?) throws(DnsControlError) -> Bool {
        guard !nameservers.isEmpty else { return false }
        try requireRegularFile()
        if try isOurs() { try revert() }
        let original = try read(path)
        do {
            try HostFile.writeDurably(original, to: backupPath)
        } catch {
            throw .io("back up \(path)", error)
        }
        let text = Self.render(original: original, nameservers: nameservers, searchDomain: searchDomain, backupPath: backupPath)
        do {
            try HostFile.write(text, to: path)
        } catch {
            throw .io("rewrite \(path)", error)
        }
        return true
    }

    /// Puts the backup back if the file is still the one ``configure(nameservers:searchDomain:)`` wrote.
    /// Returns whether it did. The backup stays (a power loss may undo the copy).
    @discardableResult
    public func revert() throws(DnsControlError) -> Bool {
        guard try isOurs() else { return false }
        let backup: String
        do {
            backup = try HostFile.read(backupPath)
        } catch {
            throw .io("read the backup \(backupPath)", error)
        }
        do {
            try HostFile.write(backup, to: path)
        } catch {
            throw .io("restore \(path)", error)
        }
        return true
    }

    /// The resolvers the system had before the tunnel: the backup's while the file is ours, else the file's.
    public func systemNameservers() throws(DnsControlError) -> [IpAddress] {
        ResolvConf.nameservers(in: try read(try isOurs() ? backupPath : path))
    }

    /// The file `configure` writes: the header, then the original's directives with the nameservers, the search
    /// list and `ndots` replaced; the original's comments are dropped.
    static func render(original: String, nameservers: [IpAddress], searchDomain: String?, backupPath: String) -> String {
        var lines = [
            magicHeader,
            "# If you modify this file, delete the above magic header line so that Firezone will",
            "# obey your new default DNS config.",
            "# If you see this text and Firezone is not running, then the last run of Firezone crashed.",
            "# The original `resolv.conf` is backed up at \(backupPath)",
        ]
        lines += nameservers.map { "nameserver \($0)" }
        if let searchDomain { lines.append("search \(searchDomain)") }
        var options = ["ndots:1"]
        for line in original.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = words.first, !keyword.hasPrefix("#"), !keyword.hasPrefix(";") else { continue }
            switch keyword {
            case "nameserver", "search", "domain": continue
            case "options": options += words.dropFirst().filter { !$0.hasPrefix("ndots:") }.map(String.init)
            default: lines.append(words.joined(separator: " "))
            }
        }
        lines.append("options " + options.joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }

    private func isOurs() throws(DnsControlError) -> Bool {
        try read(path).hasPrefix(Self.magicHeader)
    }

    private func read(_ file: String) throws(DnsControlError) -> String {
        do {
            return try HostFile.read(file)
        } catch {
            throw .io("read \(file)", error)
        }
    }

    private func requireRegularFile() throws(DnsControlError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { throw .io("inspect \(path)", .last("lstat \(path)")) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(path) }
    }
}

/// Why the system's DNS could not be pointed at the tunnel, or put back.
public enum DnsControlError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A symlink (systemd-resolved's stub, NetworkManager) or anything but a plain file: not ours to rewrite.
    case notRegularFile(String)
    case io(String, SystemCallError)
    /// `resolvectl` could not be run or refused.
    case resolvectl(String)

    public var description: String {
        switch self {
        case .notRegularFile(let path): "`\(path)` is not a regular file, cannot use it to control DNS"
        case let .io(what, error): "Failed to \(what): \(error)"
        case .resolvectl(let detail): "resolvectl: \(detail)"
        }
    }
}
#endif
