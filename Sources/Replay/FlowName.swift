/// The server name a connection's first bytes give: HTTP/1's `Host` header or the TLS ClientHello's
/// server name (SNI). Both are what the application asked for, so they tell which resource it meant when the
/// address it reached belongs to a DNS resource and a CIDR resource at once.
public enum FlowName: Hashable, Sendable, CustomStringConvertible {
    case httpHost(String)
    case tlsServerName(String)

    /// The name without a port, lower-cased, without a trailing dot.
    public var host: String {
        switch self {
        case .tlsServerName(let name): return Self.normalized(name)
        case .httpHost(let value):
            // "[v6]:port", "host:port" or "host"
            if value.hasPrefix("["), let end = value.firstIndex(of: "]") {
                return Self.normalized(String(value[value.index(after: value.startIndex)..<end]))
            }
            let parts = value.split(separator: ":", omittingEmptySubsequences: false)
            return Self.normalized(parts.count == 2 ? String(parts[0]) : value)
        }
    }

    public var description: String {
        switch self {
        case .httpHost(let value): "HTTP Host \(value)"
        case .tlsServerName(let name): "TLS server name \(name)"
        }
    }

    /// The name in a TCP connection's first payload, or `nil` when it is neither an HTTP/1 request with a Host
    /// header nor a TLS ClientHello with a server name (or is cut before it).
    public static func find(in payload: UnsafeRawBufferPointer) -> FlowName? {
        httpHost(payload).map(FlowName.httpHost) ?? tlsServerName(payload).map(FlowName.tlsServerName)
    }

    private static let methods = ["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "]
        .map { Array($0.utf8) }

    private static func httpHost(_ payload: UnsafeRawBufferPointer) -> String? {
        guard methods.contains(where: { payload.starts(with: $0) }) else { return nil }
        var lineStart = 0
        while let lineEnd = Self.index(of: [0x0D, 0x0A], in: payload, from: lineStart) {
            let line = UnsafeRawBufferPointer(rebasing: payload[lineStart..<lineEnd])
            if line.isEmpty { return nil }  // end of the headers
            if line.count > 5, line.prefix(5).map({ $0 | 0x20 }) == Array("host:".utf8) {
                // RFC 9110 §5.5: no control characters in a field value (a bare CR or a NUL makes the request invalid).
                guard !line.dropFirst(5).contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else { return nil }
                guard let value = String(validating: line.dropFirst(5), as: UTF8.self)?.trimmingSpaces else { return nil }
                return value.isEmpty ? nil : value
            }
            lineStart = lineEnd + 2
        }
        return nil
    }

    /// RFC 8446 §4.1.2 ClientHello, RFC 6066 §3 server_name; every length is checked against what is there.
    private static func tlsServerName(_ payload: UnsafeRawBufferPointer) -> String? {
        var reader = ByteReader(payload)
        guard reader.byte() == 0x16, reader.byte() == 0x03, reader.skip(1),
              let recordLength = reader.uint16(), var record = reader.slice(min(Int(recordLength), reader.remaining)),
              record.byte() == 0x01, let helloLength = record.uint24(),
              var hello = record.slice(min(helloLength, record.remaining)),
              hello.skip(2 + 32), let sessionId = hello.byte(), hello.skip(Int(sessionId)),
              let suites = hello.uint16(), hello.skip(Int(suites)), let compressions = hello.byte(), hello.skip(Int(compressions)),
              let extensionsLength = hello.uint16(), var extensions = hello.slice(min(Int(extensionsLength), hello.remaining))
        else { return nil }
        while let type = extensions.uint16(), let length = extensions.uint16(), var body = extensions.slice(Int(length)) {
            guard type == 0 else { continue }
            guard let listLength = body.uint16(), var list = body.slice(Int(listLength)) else { return nil }
            while let nameType = list.byte(), let nameLength = list.uint16(), let name = list.bytes(Int(nameLength)) {
                if nameType == 0 { return String(validating: name, as: UTF8.self) }
            }
            return nil
        }
        return nil
    }

    private static func index(of needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], bytes[index + 1] == needle[1] { return index }
            index += 1
        }
        return nil
    }

    private static func normalized(_ name: String) -> String {
        var name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }
}

/// Reads big-endian fields off a byte buffer; every read fails rather than run past the end.
private struct ByteReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func byte() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func uint24() -> Int? {
        guard remaining >= 3 else { return nil }
        defer { offset += 3 }
        return Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
    }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, remaining >= count else { return false }
        offset += count
        return true
    }

    mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    mutating func slice(_ count: Int) -> ByteReader? {
        bytes(count).map(ByteReader.init)
    }
}

private extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while scalars.first == " " || scalars.first == "\t" { scalars.removeFirst() }
        while scalars.last == " " || scalars.last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
