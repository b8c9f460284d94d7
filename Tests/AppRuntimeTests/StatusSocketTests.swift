import AppMetrics
import Foundation
import Testing

/// `status` reads the running process's answer from a Unix socket. Here a Python server (not ours) answers with
/// what a server might send: a whole response on a connection it keeps open, garbage, an error status, a body cut
/// short. Each ends in a status or a typed error, and nothing waits for ever.
@Suite("Status socket: the query against a server that misbehaves")
struct StatusSocketTests {
    static let status = NodeStatus(role: "gateway", publicKey: "key", peers: [], relays: [])

    /// Serves one connection on `path` with `response`, keeping the connection open afterwards unless `close`.
    static func serve(_ response: String, at path: String, close: Bool) throws -> Process {
        let script = """
            import os, socket, sys
            path, response, close = sys.argv[1], sys.argv[2].encode(), sys.argv[3] == "1"
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(path); server.listen(1)
            open(path + ".ready", "w").close()
            connection, _ = server.accept()
            connection.recv(4096)
            connection.sendall(response)
            if not close:
                # Who ends the connection: the client, once it has the whole answer, or this server after 10 s.
                connection.settimeout(10)
                try: outcome = "client closed" if connection.recv(1) == b"" else "client sent more"
                except socket.timeout: outcome = "server gave up"
                with open(path + ".outcome.partial", "w") as file: file.write(outcome)
                os.replace(path + ".outcome.partial", path + ".outcome")
            connection.close()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path, response, close ? "1" : "0"]
        try process.run()
        while !FileManager.default.fileExists(atPath: path + ".ready") {
            guard process.isRunning else { throw StatusSocketError.notRunning(path) }
            usleep(5_000)
        }
        return process
    }

    /// The query's result, and for a kept-open connection who ended it.
    static func query(_ response: String, close: Bool) throws -> (Result<NodeStatus, StatusSocketError>, outcome: String?) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fz-status-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try serve(response, at: directory + "/s.sock", close: close)
        let result = Result { () throws(StatusSocketError) in try StatusSocket.query(directory + "/s.sock") }
        if close {
            kill(server.processIdentifier, SIGKILL)  // Foundation starts children with SIGTERM blocked
        }
        // A kept-open server ends by itself once it knows who closed (at most 10 s); its outcome file is then whole.
        server.waitUntilExit()
        guard !close else { return (result, nil) }
        return (result, try? String(contentsOfFile: directory + "/s.sock.outcome", encoding: .utf8))
    }

    @Test("a whole response on a connection the server keeps open is read by its Content-Length")
    func keptOpen() throws {
        let body = Self.status.json()
        let (result, outcome) = try Self.query("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)", close: false)
        #expect(try result.get() == Self.status)
        #expect(outcome == "client closed", "status must not wait for the server to close: \(outcome ?? "no outcome")")
    }

    @Test("garbage, an error status and a cut body end in a typed error that says what came", arguments: [
        ("\u{1}\u{2}garbage without a header", "no HTTP header"),
        ("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 500 Internal Server Error"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"role\":", "unreadable answer"),
    ])
    func misbehaving(response: String, expected: String) throws {
        let (result, _) = try Self.query(response, close: true)
        guard case .failure(let error) = result, case .unreadable = error else {
            Issue.record("expected an unreadable answer, got \(result)")
            return
        }
        #expect("\(error)".contains(expected), "\(error)")
    }

    @Test("no server at the path: not running")
    func nothingThere() {
        #expect(throws: StatusSocketError.notRunning("/nonexistent/s.sock")) { try StatusSocket.query("/nonexistent/s.sock") }
    }
}
