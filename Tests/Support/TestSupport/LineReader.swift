import Foundation

/// Reads newline-terminated lines from a pipe with a timeout.
public final class LineReader {
    private let handle: FileHandle
    private var buffer = Data()

    public init(_ handle: FileHandle) {
        self.handle = handle
    }

    public func next(timeout seconds: Double) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                return line
            }
            var descriptor = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, seconds == 0 ? 0 : 20) > 0 else { continue }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        } while Date() < deadline
        return nil
    }
}

extension LineReader {
    /// The next line, waiting up to `timeout` without holding a thread of the concurrency pool: tests that run
    /// async code beside a child process must not block the pool that code needs.
    public func nextLine(within timeout: Duration) async -> String? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if let line = next(timeout: 0) { return line }
            try? await Task.sleep(for: .milliseconds(5))
        } while ContinuousClock.now < deadline
        return next(timeout: 0)
    }
}
