#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// Where formatted lines go: a file descriptor (standard output by default), one whole line per `write`.
public final class LogSink: Sendable {
    private let fileDescriptor: Int32
    private let lock = Mutex(())
    /// Whether the lines may carry ANSI colours (the descriptor is a terminal).
    public let isTerminal: Bool

    public init(fileDescriptor: Int32 = STDOUT_FILENO) {
        self.fileDescriptor = fileDescriptor
        isTerminal = isatty(fileDescriptor) == 1
    }

    /// `--log-dir` (spec `portal-phoenix.md` §7.2): a new `<directory>/<prefix>.<YYYY-MM-DD-HH-MM-SS>.log` with
    /// mode 0640 (the directory is created if missing), and `<directory>/latest` pointing at it.
    public static func file(in directory: String, prefix: String, secondsSinceEpoch: Int64) throws(SystemCallError) -> LogSink {
        guard mkdir(directory, 0o750) == 0 || errno == EEXIST else { throw .last("mkdir \(directory)") }
        var time = time_t(secondsSinceEpoch)
        var parts = tm()
        gmtime_r(&time, &parts)
        func padded(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let stamp = [padded(parts.tm_year + 1900, 4), padded(parts.tm_mon + 1, 2), padded(parts.tm_mday, 2), padded(parts.tm_hour, 2),
                     padded(parts.tm_min, 2), padded(parts.tm_sec, 2)].joined(separator: "-")
        let name = "\(prefix).\(stamp).log"
        let path = "\(directory)/\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .last("open \(path)") }
        guard fchmod(fd, 0o640) == 0 else {
            let error = SystemCallError.last("chmod \(path)")
            close(fd)
            throw error
        }
        let latest = "\(directory)/latest"
        unlink(latest)
        guard symlink(name, latest) == 0 else {
            let error = SystemCallError.last("symlink \(latest)")
            close(fd)
            throw error
        }
        return LogSink(fileDescriptor: fd)
    }

    public func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress, $0.count) }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}

/// A swift-log handler that writes Firezone's formats (``LogFormat``) and obeys a ``LogFilter``. A logger's label
/// is its target (`firezone_gateway`, `snownet::ice`, …), so `RUST_LOG`-style filters carry over.
public struct FirezoneLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    private let target: String
    private let format: LogFormat
    private let sinks: [LogSink]
    /// The filter turned this target off: nothing is written, whatever the level.
    private let isOff: Bool
    private let now: @Sendable () -> (seconds: Int64, nanoseconds: Int32)

    /// - Parameter also: more sinks that get the same lines (a log file: the human format, never coloured).
    public init(label: String, filter: LogFilter, format: LogFormat, sink: LogSink, also: [LogSink] = [],
                now: @escaping @Sendable () -> (seconds: Int64, nanoseconds: Int32) = FirezoneLogHandler.wallClock) {
        target = label
        self.format = format
        sinks = [sink] + also
        self.now = now
        let level = filter.level(for: label)
        isOff = level == nil
        logLevel = level ?? .critical
    }

    /// Installs the handler for every logger of the process.
    public static func bootstrap(filter: LogFilter, format: LogFormat, sink: LogSink = LogSink(), also: [LogSink] = []) {
        LoggingSystem.bootstrap { label in FirezoneLogHandler(label: label, filter: filter, format: format, sink: sink, also: also) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard !isOff else { return }
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let time = now()
        let line = LogLine(secondsSinceEpoch: time.seconds, nanoseconds: time.nanoseconds, level: event.level, target: target,
                           message: event.message.description,
                           fields: merged.sorted { $0.key < $1.key }.map { ($0.key, $0.value.description) })
        for sink in sinks { sink.write(format == .json ? line.json() : line.human(colour: sink.isTerminal)) }
    }

    /// The real time of day, in UTC seconds and nanoseconds.
    public static let wallClock: @Sendable () -> (seconds: Int64, nanoseconds: Int32) = {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return (Int64(spec.tv_sec), Int32(spec.tv_nsec))
    }
}
