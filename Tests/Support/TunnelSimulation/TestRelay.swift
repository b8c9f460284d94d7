import SansIO
import Tunnel
import Turn

/// The library's ``TurnServer`` on the simulated network. `isUp = false` makes it silent (an outage);
/// `restart()` forgets every allocation.
final class TestRelay: SimulatedHost {
    let id: String
    let server: TurnServer

    init(id: String, ip: IpAddress) {
        self.id = id
        server = TurnServer(ip: ip, username: "1900000000:salt-\(id)", password: "password-\(id)")
    }

    var ip: IpAddress { server.ip }
    var address: SocketAddress { server.address }
    var credentials: TurnCredentials { server.credentials }
    var isUp: Bool {
        get { server.isUp }
        set { server.isUp = newValue }
    }
    /// Relayed datagrams that carried WireGuard rather than ICE checks.
    var relayedWireGuard: Int { server.relayedNonStun }

    var announcement: RelayDescription {
        let server = ip.version == .v4 ? RelayServer(ipv4: address) : RelayServer(ipv6: address)
        return RelayDescription(id: id, server: server, credentials: credentials)
    }

    func restart() {
        server.restart()
    }

    func receive(_ datagram: Datagram, in simulation: Simulation) {
        let turn = TurnDatagram(source: datagram.source, destination: datagram.destination, payload: datagram.payload)
        guard let answer = server.handle(turn, now: simulation.now) else { return }
        simulation.send(Datagram(source: answer.source, destination: answer.destination, payload: answer.payload))
    }

    var description: String { "relay \(id)" }
    func nextDeadline() -> Instant? { nil }
    func advance(in simulation: Simulation) {}
}
