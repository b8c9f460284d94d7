import SansIO

/// A NAT between private hosts and the simulated network.
///
/// - endpoint-independent: one public port per private socket, any remote may answer (full cone);
/// - symmetric: one public port per private socket *and* remote, only that remote may answer.
///
/// A port forward sends everything arriving on a public port to one private socket, and that socket's
/// replies to those remotes leave from the forwarded port (connection tracking); its other traffic is
/// mapped as usual.
public final class SimulatedNat: SimulatedHost {
    public enum Behaviour: Sendable { case endpointIndependent, symmetric }

    public let publicIp: IpAddress
    public let behaviour: Behaviour
    private var inside: [IpAddress: SimulatedHost] = [:]
    private var mappings: [(inner: SocketAddress, remote: SocketAddress?, port: UInt16)] = []
    private var nextPort: UInt16 = 40_000
    private var forwards: [UInt16: SocketAddress] = [:]
    private var forwardedRemotes: Set<SocketAddress> = []

    public init(publicIp: IpAddress, behaviour: Behaviour) {
        self.publicIp = publicIp
        self.behaviour = behaviour
    }

    public func connect(_ host: SimulatedHost, at privateIp: IpAddress) {
        inside[privateIp] = host
    }

    public func forward(port: UInt16, to inner: SocketAddress) {
        forwards[port] = inner
    }

    /// Translates an outgoing datagram's source.
    public func outbound(_ datagram: Datagram) -> Datagram {
        if let (port, _) = forwards.first(where: { $0.value == datagram.source }),
           forwardedRemotes.contains(datagram.destination) {
            var translated = datagram
            translated.source = SocketAddress(ip: publicIp, port: port)
            return translated
        }
        let remote = behaviour == .symmetric ? datagram.destination : nil
        let port: UInt16
        if let mapping = mappings.first(where: { $0.inner == datagram.source && $0.remote == remote }) {
            port = mapping.port
        } else {
            port = nextPort
            nextPort += 1
            mappings.append((datagram.source, remote, port))
        }
        var translated = datagram
        translated.source = SocketAddress(ip: publicIp, port: port)
        return translated
    }

    public func receive(_ datagram: Datagram, in simulation: Simulation) {
        if let inner = forwards[datagram.destination.port], let host = inside[inner.ip] {
            forwardedRemotes.insert(datagram.source)
            var translated = datagram
            translated.destination = inner
            host.receive(translated, in: simulation)
            return
        }
        guard let mapping = mappings.first(where: {
            $0.port == datagram.destination.port && ($0.remote == nil || $0.remote == datagram.source)
        }), let host = inside[mapping.inner.ip] else { return }
        var translated = datagram
        translated.destination = mapping.inner
        host.receive(translated, in: simulation)
    }

    public var description: String { "NAT \(publicIp)" }
    public func nextDeadline() -> Instant? { nil }
    public func advance(in simulation: Simulation) {}
}
