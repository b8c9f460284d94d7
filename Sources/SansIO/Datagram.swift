/// A UDP datagram between two sockets: what sans-IO servers and the simulated network take and give.
public struct Datagram: Hashable, Sendable {
    public var source: SocketAddress
    public var destination: SocketAddress
    public var payload: [UInt8]

    public init(source: SocketAddress, destination: SocketAddress, payload: [UInt8]) {
        self.source = source
        self.destination = destination
        self.payload = payload
    }
}
