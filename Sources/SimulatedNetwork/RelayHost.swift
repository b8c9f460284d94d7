import SansIO
import Stun
import Turn
import TurnRelay

/// The toolkit's relay core (``TurnRelay/RelayCore``) as a host on the simulated network, with coturn's REST
/// credentials so every peer of a simulation can share one user. `isUp = false` makes it silent (an outage);
/// ``restart()`` forgets every allocation.
public final class RelayHost: SimulatedHost {
    public let id: String
    public let ip: IpAddress
    public private(set) var server: RelayCore
    public let credentials: TurnCredentials
    public var isUp = true
    /// Relayed datagrams that carried WireGuard rather than ICE checks.
    public private(set) var relayedWireGuard = 0
    private let configuration: RelayConfiguration

    /// A relay on `ip` whose one user (`<expiresAt>:<id>`) may allocate from any number of sockets.
    public init(id: String, ip: IpAddress, secret: String? = nil, expiresAt: Int64 = 1_900_000_000) {
        self.id = id
        self.ip = ip
        let secret = secret ?? "secret-\(id)"
        var configuration: RelayConfiguration
        switch ip {
        case .v4(let v4): configuration = RelayConfiguration(publicIPv4: v4, authentication: .coturnRestApi(secret: secret))
        case .v6(let v6): configuration = RelayConfiguration(publicIPv4: nil, publicIPv6: v6, authentication: .coturnRestApi(secret: secret))
        }
        configuration.software = "simulated relay \(id)"
        self.configuration = configuration
        server = RelayCore(configuration: configuration, random: SplitMix64(seed: 3))
        let username = "\(expiresAt):\(id)"
        credentials = TurnCredentials(username: username, password: RelayCredentials.restApiPassword(secret: secret, username: username),
                                      realm: "firezone")
    }

    public var address: SocketAddress { SocketAddress(ip: ip, port: configuration.listenPort) }

    public func restart() {
        server = RelayCore(configuration: configuration, random: SplitMix64(seed: 4))
    }

    public func receive(_ datagram: Datagram, in simulation: Simulation) {
        guard isUp else { return }
        let unixTime = simulation.unixAnchor / 1_000_000_000 + simulation.now.nanoseconds / 1_000_000_000
        defer { while server.pollEvent() != nil {} }  // no sockets to open here: every port is ours
        guard datagram.destination.port == configuration.listenPort else {
            relayFromPeer(datagram, in: simulation)
            return
        }
        switch datagram.payload.withUnsafeBytes({ server.handleFromClient($0, from: datagram.source, now: simulation.now, unixTime: unixTime) }) {
        case .answer(let answer):
            simulation.send(Datagram(source: address, destination: datagram.source, payload: answer))
        case .relay(let forward):
            let payload = Array(datagram.payload[forward.payload])
            count(payload)
            simulation.send(Datagram(source: SocketAddress(ip: ip, port: forward.port), destination: forward.peer, payload: payload))
        case .drop:
            break
        }
    }

    private func relayFromPeer(_ datagram: Datagram, in simulation: Simulation) {
        var framed = [UInt8](repeating: 0, count: datagram.payload.count + 4)
        let back = framed.withUnsafeMutableBytes { buffer -> ClientBound? in
            UnsafeMutableRawBufferPointer(rebasing: buffer[4...]).copyBytes(from: datagram.payload)
            return server.relayFromPeer(buffer, count: datagram.payload.count, from: datagram.source, port: datagram.destination.port,
                                        now: simulation.now)
        }
        guard let back else { return }
        count(datagram.payload)
        simulation.send(Datagram(source: address, destination: back.client, payload: Array(framed[0..<back.count])))
    }

    private func count(_ payload: [UInt8]) {
        if payload.withUnsafeBytes({ DatagramKind.classify($0) }) != .stun { relayedWireGuard += 1 }
    }

    public var description: String { "relay \(id)" }
    public func nextDeadline() -> Instant? { server.pollTimeout() }
    public func advance(in simulation: Simulation) { server.handleTimeout(now: simulation.now) }
}
