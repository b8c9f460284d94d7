import Foundation
import Replay
import TestSupport
import Testing

/// The name a connection's first bytes ask for: a ClientHello written by OpenSSL (through Python's ssl module)
/// and HTTP requests as curl writes them. Recorded curl traffic is in RecordedCaptureTests.
@Suite(.offPool) struct FlowNameTests {
    /// OpenSSL's ClientHello for `serverName`, as the first bytes of a TLS connection.
    private func clientHello(serverName: String) throws -> [UInt8] {
        let script = """
            import ssl, sys
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            connection = context.wrap_bio(incoming, outgoing, server_hostname=sys.argv[1])
            try:
                connection.do_handshake()
            except ssl.SSLWantReadError:
                pass
            sys.stdout.write(outgoing.read().hex())
            """
        let hex = try Shell.run(["python3", "-c", script, serverName]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        return stride(from: 0, to: hex.count, by: 2).map { offset in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
        }
    }

    @Test func theServerNameOfOpenSslsClientHello() throws {
        let hello = try clientHello(serverName: "www.wiki.example")
        #expect(hello.count > 200)
        let name = hello.withUnsafeBytes { FlowName.find(in: $0) }
        #expect(name == .tlsServerName("www.wiki.example"))
        #expect(name?.host == "www.wiki.example")
        // Cut anywhere before the name ends, the ClientHello names nothing, and nothing is read past the cut.
        let nameEnd = try #require(Self.range(of: Array("www.wiki.example".utf8), in: hello)?.upperBound)
        for cut in stride(from: 0, to: nameEnd, by: 7) {
            #expect(Array(hello.prefix(cut)).withUnsafeBytes { FlowName.find(in: $0) } == nil, "cut at \(cut)")
        }
    }

    @Test func theHostHeaderOfAnHttpRequestWithoutItsPort() {
        let request = Array("GET / HTTP/1.1\r\nUser-Agent: curl/7.88.1\r\nhOsT:  10.20.0.5:8080 \r\nAccept: */*\r\n\r\n".utf8)
        let name = request.withUnsafeBytes { FlowName.find(in: $0) }
        #expect(name == .httpHost("10.20.0.5:8080"))
        #expect(name?.host == "10.20.0.5")
        #expect(FlowName.httpHost("[fd20::10]:80").host == "fd20::10")
        #expect(FlowName.httpHost("WWW.Wiki.Example.").host == "www.wiki.example")
        let bodyHost = Array("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nHost: x\r\n".utf8)
        #expect(bodyHost.withUnsafeBytes { FlowName.find(in: $0) } == nil, "a Host line after the headers is body")
        #expect(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8).withUnsafeBytes { FlowName.find(in: $0) } == nil)
        // Found by Fuzz/Dissect: a bare CR (or any control character) makes the field invalid (RFC 9110 §5.5).
        let bareCr = Array("GET / HTTP/1.1\r\nHost: www.wiki\rexample\r\n\r\n".utf8)
        #expect(bareCr.withUnsafeBytes { FlowName.find(in: $0) } == nil)
    }

    private static func range(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
            .map { $0..<($0 + needle.count) }
    }
}
