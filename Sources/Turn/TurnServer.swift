import Crypto
import FoundationEssentials
import SansIO
import Stun

/// A small sans-IO TURN server that answers like Firezone's relay (spec `snownet.md` §3.11, §7): realm `firezone`,
/// nonces bound to the client's socket and good for ``nonceUses`` requests (then 438 Stale Nonce),
/// MESSAGE-INTEGRITY checked on every request and present on every answer, BINDING, ALLOCATE, REFRESH (LIFETIME
/// 0 deletes), CHANNEL-BIND, ChannelData in both directions, and datagrams from port 0 dropped. Either one
/// static user, or Firezone's credentials derived from a secret (`<expiry>:<salt>`, any number of users), where
/// a new ALLOCATE frees the username's older allocation (#12319).
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
    /// The static user's credentials; in secret mode, those of a user named `static` (see ``credentials(salt:expiresAt:)``).
    public let credentials: TurnCredentials
    /// `false` makes it silent (an outage).
    public var isUp = true
    /// How many requests one nonce signs before it is stale (Firezone's relay: 10 000).
    public var nonceUses = 10_000
    /// Datagrams relayed in either direction, and those of them that were not STUN (WireGuard, for a tunnel).
    public private(set) var relayedDatagrams = 0
    public private(set) var relayedNonStun = 0
    /// Allocations freed because another socket allocated with the same username.
    public private(set) var allocationsFreedByUsername = 0

    private let authentication: Authentication
    private var nonces: [SocketAddress: Nonce] = [:]
    private var nonceCounter = 0
    private var allocations: [SocketAddress: Allocation] = [:]
    private var nextPort: UInt16 = 50_000
    /// At most this many sockets hold a nonce; more forget the table (a flood costs bounded memory).
    static let maxNonces = 65_536

    private enum Authentication {
        case staticUser(username: String, key: [UInt8])
        /// Firezone's scheme: the password of `<expiry>:<salt>` is base64(SHA-256("<expiry>:<secret>:<salt>")), no padding.
        case firezone(secret: String)
    }

    private struct Nonce {
        var value: String
        var uses: Int
    }

    private struct Allocation {
        var relayed: SocketAddress
        var username: String
        var channels: [UInt16: SocketAddress] = [:]
        var expires: Instant
    }

    public init(ip: IpAddress, username: String, password: String) {
        self.ip = ip
        credentials = TurnCredentials(username: username, password: password, realm: "firezone")
        authentication = .staticUser(username: username, key: StunKey.longTerm(username: username, realm: "firezone", password: password))
    }

    /// Firezone's relay: any username `<unix expiry>:<salt>` whose password derives from `secret` and that has not
    /// expired (checked against `unixTime` of each request: ``handle(_:now:unixTime:)``).
    public init(ip: IpAddress, secret: String) {
        self.ip = ip
        authentication = .firezone(secret: secret)
        credentials = Self.credentials(secret: secret, salt: "static", expiresAt: 4_102_444_800)
    }

    /// Credentials for one user of a secret-mode server, as the portal mints them.
    public func credentials(salt: String, expiresAt: Int64) -> TurnCredentials {
        guard case .firezone(let secret) = authentication else { return credentials }
        return Self.credentials(secret: secret, salt: salt, expiresAt: expiresAt)
    }

    static func credentials(secret: String, salt: String, expiresAt: Int64) -> TurnCredentials {
        let digest = SHA256.hash(data: Array("\(expiresAt):\(secret):\(salt)".utf8))
        let password = String(Data(digest).base64EncodedString().prefix { $0 != "=" })
        return TurnCredentials(username: "\(expiresAt):\(salt)", password: password, realm: "firezone")
    }

    /// The long-term key of `username`, if it is a user of this server that has not expired at `unixTime`.
    private func key(for username: String, unixTime: Int64) -> [UInt8]? {
        switch authentication {
        case .staticUser(let name, let key):
            return username == name ? key : nil
        case .firezone(let secret):
            let parts = username.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let expiry = Int64(parts[0]), expiry > unixTime else { return nil }
            let derived = Self.credentials(secret: secret, salt: String(parts[1]), expiresAt: expiry)
            return StunKey.longTerm(username: username, realm: "firezone", password: derived.password)
        }
    }

    /// Whether a new ALLOCATE frees the username's older allocation: Firezone's relay does; a standard server
    /// with one static user shared by everyone cannot.
    private var oneAllocationPerUsername: Bool {
        if case .firezone = authentication { true } else { false }
    }

    /// The listening socket, port 3478.
    public var address: SocketAddress { SocketAddress(ip: ip, port: 3478) }

    /// Whether `destination` is one of this server's sockets (its listening port or a relayed address).
    public func owns(_ destination: SocketAddress) -> Bool {
        destination.ip == ip
    }

    /// Forgets every allocation and nonce (a restarted relay).
    public func restart() {
        allocations.removeAll()
        nonces.removeAll()
    }

    /// The sockets holding an allocation, and their usernames.
    public var allocatedClients: [(client: SocketAddress, username: String)] {
        allocations.map { ($0.key, $0.value.username) }.sorted { $0.client.description < $1.client.description }
    }

    /// Handles one datagram addressed to this server; returns the datagram to send, if any. Malformed input
    /// and requests without valid credentials get no answer or a STUN error, never a crash. `unixTime` decides
    /// whether Firezone credentials have expired.
    public func handle(_ datagram: Datagram, now: Instant, unixTime: Int64 = 1_800_000_000) -> Datagram? {
        guard isUp, datagram.source.port != 0 else { return nil }
        return datagram.destination.port == 3478 ? fromClient(datagram, now: now, unixTime: unixTime) : fromPeer(datagram, now: now)
    }

    // MARK: Client side

    private func fromClient(_ datagram: Datagram, now: Instant, unixTime: Int64) -> Datagram? {
        let client = datagram.source
        if let (channel, payload) = try? datagram.payload.withUnsafeBytes({ try ChannelData.decode($0) }) {
            guard let allocation = allocations[client], allocation.expires > now, let peer = allocation.channels[channel]
            else { return nil }
            let inner = Array(datagram.payload[payload])
            count(inner)
            return Datagram(source: allocation.relayed, destination: peer, payload: inner)
        }
        guard let request = try? StunMessage(decoding: datagram.payload), request.messageClass == .request else { return nil }
        let username = request.first { if case .username(let name) = $0 { name } else { nil } }
        let key = username.flatMap { self.key(for: $0, unixTime: unixTime) }
        let response = answer(request, from: client, username: username, key: key, now: now)
        // Every answer to a request that named a known user is signed, 401 and 438 included (§3.11).
        return Datagram(source: address, destination: client, payload: response.encode(integrity: key.map { .sha1(key: $0) }))
    }

    private func answer(_ request: StunMessage, from client: SocketAddress, username: String?, key: [UInt8]?, now: Instant) -> StunMessage {
        let id = request.transactionId
        if request.method == .binding {
            return StunMessage(class: .successResponse, method: .binding, transactionId: id, attributes: [.xorMappedAddress(client)])
        }
        let requestNonce = request.first { if case .nonce(let n) = $0 { n } else { nil } }
        guard let requestNonce, let key, let username, request.verifyIntegrity(key: key) else {
            return error(request, 401, extra: [.realm("firezone"), .nonce(issueNonce(to: client))])
        }
        guard var issued = nonces[client], issued.value == requestNonce, issued.uses < nonceUses else {
            return error(request, 438, extra: [.realm("firezone"), .nonce(issueNonce(to: client, fresh: true))])
        }
        issued.uses += 1
        nonces[client] = issued
        switch request.method {
        case .allocate:
            guard allocations[client].map({ $0.expires <= now }) ?? true else { return error(request, 437) }
            if oneAllocationPerUsername, let older = allocations.first(where: { $0.value.username == username && $0.key != client }) {
                allocations[older.key] = nil
                allocationsFreedByUsername += 1
            }
            let relayed = SocketAddress(ip: ip, port: nextPort)
            nextPort &+= 1
            allocations[client] = Allocation(relayed: relayed, username: username, expires: now + .seconds(600))
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

    /// The socket's nonce, or a new one when it has none or `fresh` (stale): nonces are bound to the socket that
    /// was given them.
    private func issueNonce(to client: SocketAddress, fresh: Bool = false) -> String {
        if !fresh, let current = nonces[client], current.uses < nonceUses { return current.value }
        if nonces.count >= Self.maxNonces { nonces.removeAll() }
        nonceCounter += 1
        let value = "nonce-\(nonceCounter)"
        nonces[client] = Nonce(value: value, uses: 0)
        return value
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
