import SansIO
import Stun
import Tunnel
import Turn

/// A TURN server on the simulated network that answers like Firezone's relay (spec `snownet.md` §3.11):
/// realm `firezone`, a nonce dance, MESSAGE-INTEGRITY checked on every request and present on every answer,
/// BINDING, ALLOCATE, REFRESH (LIFETIME 0 deletes), CHANNEL-BIND and ChannelData in both directions.
/// `isUp = false` makes it silent (an outage); `restart()` forgets every allocation.
final class TestRelay: SimulatedHost {
    let id: String
    let ip: IpAddress
    let credentials: TurnCredentials
    var isUp = true
    private let nonce = "sim-nonce"
    private var allocations: [SocketAddress: RelayAllocation] = [:]
    private var nextPort: UInt16 = 50_000
    private(set) var relayedDatagrams = 0
    /// Relayed datagrams that carried WireGuard rather than ICE checks.
    private(set) var relayedWireGuard = 0

    struct RelayAllocation {
        var relayed: SocketAddress
        var channels: [UInt16: SocketAddress] = [:]
        var expires: Instant
    }

    init(id: String, ip: IpAddress) {
        self.id = id
        self.ip = ip
        credentials = TurnCredentials(username: "1900000000:salt-\(id)", password: "password-\(id)", realm: "firezone")
    }

    var address: SocketAddress { SocketAddress(ip: ip, port: 3478) }

    var announcement: RelayDescription {
        let server = ip.version == .v4 ? RelayServer(ipv4: address) : RelayServer(ipv6: address)
        return RelayDescription(id: id, server: server, credentials: credentials)
    }

    func restart() {
        allocations.removeAll()
    }

    private var key: [UInt8] {
        StunKey.longTerm(username: credentials.username, realm: "firezone", password: credentials.password)
    }

    func receive(_ datagram: Datagram, in simulation: Simulation) {
        guard isUp else { return }
        if datagram.destination.port == 3478 {
            fromClient(datagram, in: simulation)
        } else {
            fromPeer(datagram, in: simulation)
        }
    }

    var description: String { "relay \(id)" }
    func nextDeadline() -> Instant? { nil }
    func advance(in simulation: Simulation) {}

    // MARK: Client side

    private func fromClient(_ datagram: Datagram, in simulation: Simulation) {
        let client = datagram.source
        if let (channel, payload) = try? datagram.payload.withUnsafeBytes({ try ChannelData.decode($0) }) {
            guard let allocation = allocations[client], allocation.expires > simulation.now,
                  let peer = allocation.channels[channel]
            else { return }
            count(Array(datagram.payload[payload]))
            simulation.send(Datagram(source: allocation.relayed, destination: peer,
                                     payload: Array(datagram.payload[payload])))
            return
        }
        guard let request = try? StunMessage(decoding: datagram.payload), request.messageClass == .request else { return }
        let response = answer(request, from: client, now: simulation.now)
        let signed = request.first { if case .username = $0 { true } else { nil } } ?? false
        simulation.send(Datagram(source: address, destination: client,
                                 payload: response.encode(integrity: signed ? .sha1(key: key) : nil)))
    }

    private func answer(_ request: StunMessage, from client: SocketAddress, now: Instant) -> StunMessage {
        let id = request.transactionId
        if request.method == .binding {
            return StunMessage(class: .successResponse, method: .binding, transactionId: id,
                               attributes: [.xorMappedAddress(client)])
        }
        let requestNonce = request.first { if case .nonce(let n) = $0 { n } else { nil } }
        guard requestNonce == nonce, request.verifyIntegrity(key: key) else {
            return error(request, requestNonce == nil || requestNonce == nonce ? 401 : 438, extra: [.realm("firezone"), .nonce(nonce)])
        }
        switch request.method {
        case .allocate:
            guard allocations[client].map({ $0.expires <= now }) ?? true else { return error(request, 437) }
            let relayed = SocketAddress(ip: ip, port: nextPort)
            nextPort += 1
            allocations[client] = RelayAllocation(relayed: relayed, expires: now + .seconds(600))
            return StunMessage(class: .successResponse, method: .allocate, transactionId: id,
                               attributes: [.xorRelayedAddress(relayed), .xorMappedAddress(client), .lifetime(seconds: 600)])
        case .refresh:
            guard allocations[client] != nil else { return error(request, 437) }
            let lifetime: UInt32 = request.first { if case .lifetime(let s) = $0 { s } else { nil } } ?? 600
            if lifetime == 0 {
                allocations[client] = nil
            } else {
                allocations[client]?.expires = now + .seconds(Int64(lifetime))
            }
            return StunMessage(class: .successResponse, method: .refresh, transactionId: id,
                               attributes: [.lifetime(seconds: lifetime)])
        case .channelBind:
            guard allocations[client] != nil,
                  let channel = request.first({ if case .channelNumber(let c) = $0 { c } else { nil } }),
                  let peer = request.first({ if case .xorPeerAddress(let p) = $0 { p } else { nil } })
            else { return error(request, 400) }
            allocations[client]?.channels[channel] = peer
            return StunMessage(class: .successResponse, method: .channelBind, transactionId: id)
        default:
            return error(request, 400)
        }
    }

    private func error(_ request: StunMessage, _ code: Int, extra: [StunAttribute] = []) -> StunMessage {
        StunMessage(class: .errorResponse, method: request.method, transactionId: request.transactionId,
                    attributes: [.errorCode(code: code, reason: "Error \(code)")] + extra)
    }

    private func count(_ payload: [UInt8]) {
        relayedDatagrams += 1
        if payload.withUnsafeBytes({ DatagramKind.classify($0) }) != .stun { relayedWireGuard += 1 }
    }

    // MARK: Peer side

    private func fromPeer(_ datagram: Datagram, in simulation: Simulation) {
        guard let (client, allocation) = allocations.first(where: { $0.value.relayed == datagram.destination }),
              allocation.expires > simulation.now,
              let channel = allocation.channels.first(where: { $0.value == datagram.source })?.key,
              let framed = try? ChannelData.encode(channel: channel, payload: datagram.payload)
        else { return }
        count(datagram.payload)
        simulation.send(Datagram(source: address, destination: client, payload: framed))
    }
}
