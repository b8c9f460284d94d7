import Foundation

/// The Unix socket a running client or gateway serves its ``NodeStatus`` on.
public enum StatusSocket {
    /// `/run/firezone-gateway/status.sock` for `firezone-gateway`, and so on.
    public static func defaultPath(for component: String) -> String {
        "/run/\(component)/status.sock"
    }

    /// Reads the status from the process serving `path` (an HTTP/1.0 `GET /status`).
    public static func query(_ path: String) throws(StatusSocketError) -> NodeStatus {
        let descriptor = try connect(path)
        defer { close(descriptor) }
        let request = Array("GET /status HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            throw .unreadable(path, reason: "sending the request: \(String(cString: strerror(errno)))")
        }
        // Reads until the body's Content-Length is in (or the server closes): a server that keeps the connection
        // open must not keep `status` waiting.
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !isComplete(answer) {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count >= 0 else { throw .unreadable(path, reason: String(cString: strerror(errno))) }
            guard count > 0 else { break }
            answer.append(contentsOf: chunk[..<count])
            guard answer.count <= 64 << 20 else { throw .unreadable(path, reason: "more than 64 MiB") }
        }
        return try decode(answer, path: path)
    }

    /// Checks the path, makes its directory when it is missing (mode 0700, so only root reaches the socket) and
    /// removes a socket no process serves any more.
    static func prepare(_ path: String) throws(StatusSocketError) {
        guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else { throw .pathTooLong(path) }
        let directory = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: directory) {
            guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
                throw .cannotPrepare(path, reason: "mkdir \(directory): \(String(cString: strerror(errno)))")
            }
        }
        guard FileManager.default.fileExists(atPath: path) else { return }
        if let descriptor = try? connect(path) {
            close(descriptor)
            throw .inUse(path)
        }
        guard unlink(path) == 0 else { throw .cannotPrepare(path, reason: "unlink: \(String(cString: strerror(errno)))") }
    }

    private static func connect(_ path: String) throws(StatusSocketError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw .pathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .unreadable(path, reason: "socket: \(String(cString: strerror(errno)))") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(descriptor)
            switch error {
            case EACCES, EPERM: throw .permissionDenied(path)
            default: throw .notRunning(path)
            }
        }
        return descriptor
    }

    private static let headerEnd = Array("\r\n\r\n".utf8)

    /// Whether `answer` holds a whole response with a Content-Length.
    static func isComplete(_ answer: [UInt8]) -> Bool {
        guard let end = answer.indices.first(where: { answer[$0...].starts(with: headerEnd) }) else { return false }
        let head = String(decoding: answer[..<end], as: UTF8.self).lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return false }
        return answer.count - end - headerEnd.count >= length
    }

    static func decode(_ answer: [UInt8], path: String) throws(StatusSocketError) -> NodeStatus {
        let separator = headerEnd
        guard let end = answer.indices.first(where: { answer[$0...].starts(with: separator) }) else {
            throw .unreadable(path, reason: "no HTTP header in \(answer.count) bytes")
        }
        let head = String(decoding: answer[..<end], as: UTF8.self)
        guard let statusLine = head.split(separator: "\r\n").first, statusLine.split(separator: " ").dropFirst().first == "200" else {
            throw .unreadable(path, reason: "answer '\(head.split(separator: "\r\n").first ?? "")'")
        }
        do {
            return try JSONDecoder().decode(NodeStatus.self, from: Data(answer[(end + separator.count)...]))
        } catch {
            throw .unreadable(path, reason: "\(error)")
        }
    }
}

extension StatusSocket {
    /// `<tool> status`: prints the status read from `path` as text or JSON; on failure prints why to standard
    /// error and returns 1.
    public static func printStatus(from path: String, json: Bool, tool: String) -> Int32 {
        do {
            let status = try query(path)
            FileHandle.standardOutput.write(Data((json ? status.json() + "\n" : status.text()).utf8))
            return 0
        } catch {
            FileHandle.standardError.write(Data("\(tool) status: \(error)\n".utf8))
            return 1
        }
    }
}
