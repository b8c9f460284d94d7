#if canImport(Glibc)
import Glibc
#endif
import Logging
import Noise

/// The WireGuard key log a client or gateway writes when `WGKEYLOGFILE` names a file, in the spirit of
/// `SSLKEYLOGFILE`: every handshake's secrets of this side, in the format Wireshark's WireGuard dissector and
/// `firezone-pcap-replay dissect --keylog` read. The file is created (or reopened for appending) readable by
/// its owner only; anyone who can read it can decrypt every tunnel of this process, so its use is logged as a
/// warning at start.
public final class KeyLogFile {
    /// The environment variable that names the file.
    public static let environmentVariable = "WGKEYLOGFILE"

    public let path: String
    private let descriptor: CInt
    private let logger: Logger
    private var failed = false

    /// Opens `path` for appending, mode 0600 (an existing file is set to 0600 too).
    public init(path: String, logger: Logger) throws(KeyLogFileError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw KeyLogFileError(path: path, message: String(cString: strerror(errno))) }
        guard fchmod(descriptor, 0o600) == 0 else {
            let message = String(cString: strerror(errno))
            close(descriptor)
            throw KeyLogFileError(path: path, message: "cannot make it private (0600): \(message)")
        }
        self.path = path
        self.descriptor = descriptor
        self.logger = logger
        logger.warning("WireGuard session secrets are written to the key log \(path) (\(Self.environmentVariable)); whoever reads it can decrypt this process's tunnels")
    }

    deinit {
        close(descriptor)
    }

    /// Appends one handshake's secrets. A failed write is logged once and the key log stays incomplete.
    public func write(_ secrets: WireGuardSessionSecrets) {
        var bytes = Array(secrets.keyLogLines.utf8)
        defer { for index in bytes.indices { bytes[index] = 0 } }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else {
                if !failed { logger.error("Cannot write the key log \(path): \(String(cString: strerror(errno)))") }
                failed = true
                return
            }
            written += result
        }
    }
}

/// The key log file could not be opened.
public struct KeyLogFileError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "cannot open the key log \(path): \(message)" }
}
