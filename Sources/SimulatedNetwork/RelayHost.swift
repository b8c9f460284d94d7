import SansIO
import Turn

/// The toolkit's sans-IO TURN server as a host on the simulated network. `isUp = false` makes it silent (an
/// outage); ``restart()`` forgets every allocation.
public final class RelayHost: SimulatedHost {
    public let id: String
    public let server: TurnServer

    public init(id: String, ip: IpAddress, username: String? = nil, password: String? = nil) {
        self.id = id
        server = TurnServer(ip: ip, username: username ?? "1900000000:salt-\(id)", password: password ?? "password-\(id)")
    }

    public var ip: IpAddress { server.ip }
    public var address: SocketAddress { server.address }
    public var credentials: TurnCredentials { server.credentials }
    public var isUp: Bool {
        get { server.isUp }
        set { server.isUp = newValue }
    }
    /// Relayed datagrams that carried WireGuard rather than ICE checks.
    public var relayedWireGuard: Int { server.relayedNonStun }

    public func restart() {
        server.restart()
    }

    public func receive(_ datagram: Datagram, in simulation: Simulation) {
        guard let answer = server.handle(datagram, now: simulation.now) else { return }
        simulation.send(answer)
    }

    public var description: String { "relay \(id)" }
    public func nextDeadline() -> Instant? { nil }
    public func advance(in simulation: Simulation) {}
}
