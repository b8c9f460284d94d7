import SansIO
import Stun

/// A small sans-IO TURN server that answers like Firezone's relay (spec `snownet.md` §3.11): realm `firezone`,
/// a nonce dance, MESSAGE-INTEGRITY checked on every request and present on every answer, BINDING, ALLOCATE,
/// REFRESH (LIFETIME 0 deletes), CHANNEL-BIND, and ChannelData in both directions. One static user.
///
/// It exists so a whole tunnel can run in one process (the pcap replay, simulations): feed it every datagram
/// addressed to ``address`` or to one of its relayed addresses and send what it returns.
///
/// ```swift
/// let relay = TurnServer(ip: IpAddress("192.0.2.1")!, username: "1900000000:salt", password: "secret")
/// if let answer = relay.handle(Datagram(source: client, destination: relay.address, payload: bytes), now: now) {
///     send(answer)
/// }
/// ```
public final class TurnServer {
    public let ip: IpAddress
    public let credentials: TurnCredentials
    /// `false` makes it silent (an outage).
    public var isUp = true
    /// Datagrams relayed in either direction, and those of them that were not STUN (WireGuard, for a tunnel).
    public private(set) var relayedDatagrams = 0
    public private(set) var relayedNonStun = 0

    private let nonce = "relay-nonce"
    private let key: [UInt8]
    private var allocations: [SocketAddress: Allocation] = [:]
    private var nextPort: UInt16 = 50_000

    private struct Allocation {
        var relayed: SocketAddress
        var channels: [UInt16: SocketAddress] = [:]
        var expires: Instant
    }

    public init(ip: IpAddress, username: String, password: String) {
        self.ip = ip
        credentials = TurnCredentials(username: username, password: password, realm: "firezone")
        key = StunKey.longTerm(username: username, realm: "firezone", password: password)
    }

    /// The listening socket, port 3478.
    public var address: SocketAddress { SocketAddress(ip: ip, port: 3478) }

    /// Whether `destination` is one of this server's sockets (its listening port or a relayed address).
    public func owns(_ destination: SocketAddress) -> Bool {
        destination.ip == ip
    }

    /// Forgets every allocation (a restarted relay).
    public func restart() {
        allocations.removeAll()
    }

    /// Handles one datagram addressed to this server; returns the datagram to send, if any. Malformed input
    /// and requests without valid credentials get no answer or a STUN error, never a crash.
    public func handle(_ datagram: Datagram, now: Instant) -> Datagram? {
        guard isUp else { return nil }
        return datagram.destination.port == 3478 ? fromClient(datagram, now: now) : fromPeer(datagram, now: now)
    }

    // MARK: Client side

    private func fromClient(_ datagram: Datagram, now: Instant) -> Datagram? {
        let client = datagram.source
        if let (channel, payload) = try? datagram.payload.withUnsafeBytes({ try ChannelData.decode($0) }) {
            guard let allocation = allocations[client], allocation.expires > now, let peer = allocation.channels[channel]
            else { return nil }
            let inner = Array(datagram.payload[payload])
            count(inner)
            return Datagram(source: allocation.relayed, destination: peer, payload: inner)
        }
        guard let request = try? StunMessage(decoding: datagram.payload), request.messageClass == .request else { return nil }
        let response = answer(request, from: client, now: now)
        let signed = request.first { if case .username = $0 { true } else { nil } } ?? false
        return Datagram(source: address, destination: client, payload: response.encode(integrity: signed ? .sha1(key: key) : nil))
    }

    private func answer(_ request: StunMessage, from client: SocketAddress, now: Instant) -> StunMessage {
        let id = request.transactionId
        if request.method == .binding {
            return StunMessage(class: .successResponse, method: .binding, transactionId: id, attributes: [.xorMappedAddress(client)])
        }
        let requestNonce = request.first { if case .nonce(let n) = $0 { n } else { nil } }
        guard requestNonce == nonce, request.verifyIntegrity(key: key) else {
            return error(request, requestNonce == nil || requestNonce == nonce ? 401 : 438, extra: [.realm("firezone"), .nonce(nonce)])
        }
        switch request.method {
        case .allocate:
            guard allocations[client].map({ $0.expires <= now }) ?? true else { return error(request, 437) }
            let relayed = SocketAddress(ip: ip, port: nextPort)
            nextPort &+= 1
            allocations[client] = Allocation(relayed: relayed, expires: now + .seconds(600))
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
            return StunMessage(class: .successResponse, method: .refresh, transactionId: id, attributes: [.lifetime(seconds: lifetime)])
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
        if payload.withUnsafeBytes({ DatagramKind.classify($0) }) != .stun { relayedNonStun += 1 }
    }

    // MARK: Peer side

    private func fromPeer(_ datagram: Datagram, now: Instant) -> Datagram? {
        guard let (client, allocation) = allocations.first(where: { $0.value.relayed == datagram.destination }),
              allocation.expires > now,
              let channel = allocation.channels.first(where: { $0.value == datagram.source })?.key,
              let framed = try? ChannelData.encode(channel: channel, payload: datagram.payload)
        else { return nil }
        count(datagram.payload)
        return Datagram(source: address, destination: client, payload: framed)
    }
}
