/// The bytes that identify where a handshake message came from (IP address and port), for cookies.
/// The library treats them as opaque; the IO layer fills them from the socket address.
public struct EndpointKey: Hashable, Sendable {
    var storage: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var count: Int = 0

    /// Up to 24 bytes, e.g. the 4 or 16 address bytes followed by the 2 port bytes.
    public init(_ bytes: some Collection<UInt8>) {
        count = min(bytes.count, 24)
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes.prefix(24)) }
    }

    /// No address (e.g. a test or a replay without the underlay).
    public static let unknown = EndpointKey([UInt8]())

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        Swift.withUnsafeBytes(of: storage) { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    public static func == (lhs: EndpointKey, rhs: EndpointKey) -> Bool {
        lhs.count == rhs.count && lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { left.elementsEqual($0) } }
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
