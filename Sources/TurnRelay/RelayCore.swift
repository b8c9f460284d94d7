import SansIO
import Stun

/// A TURN relay with Firezone's semantics (spec `snownet.md` §3.11, §7), sans-IO: the IO layer feeds it what
/// arrives on the listening port (``handleFromClient(_:from:now:unixTime:)``) and on allocations' ports
/// (``relayFromPeer(_:count:from:port:now:)``), sends what they return, opens and closes relayed ports as
/// ``pollEvent()`` says, and calls ``handleTimeout(now:)`` at ``pollTimeout()``.
///
/// BINDING is answered unauthenticated; ALLOCATE, REFRESH, CHANNEL-BIND and CREATE-PERMISSION need long-term
/// credentials (``RelayAuthentication``), nonces are bound to the client's socket and good for
/// ``RelayConfiguration/nonceUses`` requests (438 after), and every answer to a request that named a known user
/// is signed, 401 and 438 included. Data flows over channels only: no Send or Data indications. Datagrams from
/// port 0 are dropped (#14036).
///
/// ```swift
/// let relay = RelayCore(configuration: RelayConfiguration(publicIPv4: ip, authentication: .firezone(secret: s)))
/// switch relay.handleFromClient(bytes, from: client, now: now, unixTime: unix) {
/// case .answer(let answer): listening.send(answer, to: client)
/// case .relay(let forward): ports[forward.port].send(bytes[forward.payload], to: forward.peer)
/// case .drop: break
/// }
/// while let event = relay.pollEvent() { open or close the port }
/// ```
public final class RelayCore {
    public let configuration: RelayConfiguration
    public internal(set) var statistics = RelayStatistics()

    /// Every change to an allocation or its channels may move the next deadline: forget the cached one.
    var allocations: [RelayClient: Allocation] = [:] {
        didSet { cachedTimeout = nil }
    }
    /// ``pollTimeout()``'s answer (itself optional) until an allocation changes: relaying changes none, and the IO
    /// loop asks on every round, which would otherwise walk every allocation and channel each time.
    private var cachedTimeout: Instant??
    var clientByPort: [UInt16: RelayClient] = [:]
    var clientByUsername: [String: RelayClient] = [:]
    var nonces: [RelayClient: Nonce] = [:]
    var events: [RelayEvent] = []
    var random: SplitMix64

    static var defaultLifetime: Duration { .seconds(600) }
    static var maximumLifetime: Duration { .seconds(3600) }
    static var channelLifetime: Duration { .seconds(600) }
    /// After a channel expires, its number and peer stay reserved this long (RFC 8656 §12).
    static var channelCoolDown: Duration { .seconds(300) }

    public init(configuration: RelayConfiguration, random: any RandomNumberGenerator = SystemRandomNumberGenerator()) {
        self.configuration = configuration
        var base = random
        self.random = SplitMix64(seed: base.next())
    }

    /// What to do with a datagram that arrived on the listening port.
    public enum ClientOutcome: Hashable, Sendable {
        /// Send these bytes back to the client from the listening port.
        case answer([UInt8])
        /// ChannelData of a bound channel: send its payload from the allocation's port to the peer.
        case relay(PeerBound)
        case drop
    }

    public var allocationCount: Int { allocations.count }
    /// The addresses of the clients holding an allocation, in order.
    public var allocatedClients: [SocketAddress] { allocations.keys.sorted { $0.description < $1.description }.map(\.address) }
    /// Channels bound or in their cool-down, over every allocation.
    public internal(set) var channelCount = 0

    /// Handles a datagram from `client` on the listening port, or a frame from its TCP or TLS stream (`.stream`).
    /// `unixTime` decides whether credentials expired.
    public func handleFromClient(_ datagram: UnsafeRawBufferPointer, from address: SocketAddress, over transport: ClientTransport = .udp,
                                 now: Instant, unixTime: Int64) -> ClientOutcome {
        let client = RelayClient(address: address, transport: transport)
        guard address.port != 0 else {
            statistics.fromPortZero += 1
            return .drop
        }
        guard let first = datagram.first else { return dropped() }
        switch first {
        case 0x40...0x7F where configuration.channelNumbers.contains(UInt16(first) << 8):
            return relayFromClient(datagram, from: client, now: now)
        case 0x00...0x01:
            guard let request = try? StunMessage(decoding: datagram), request.messageClass == .request else { return dropped() }
            return .answer(answer(request, from: client, now: now, unixTime: unixTime))
        default:
            return dropped()
        }
    }

    /// The IO layer could not open `port` (something else holds it): its allocation is freed, so the client's next
    /// request gets 437 and it allocates again, on another port.
    public func portUnavailable(_ port: UInt16, now: Instant) {
        guard let client = clientByPort[port] else { return }
        statistics.portsUnavailable += 1
        free(client, now: now)
        _ = events.popLast()  // the port was never opened: nothing to close
    }

    public func pollEvent() -> RelayEvent? {
        events.isEmpty ? nil : events.removeFirst()
    }

    /// Frees expired allocations (their ports close) and forgets channels past their cool-down.
    public func handleTimeout(now: Instant) {
        for (client, allocation) in allocations {
            guard allocation.expires > now else {
                free(client, now: now)
                continue
            }
            let stale = allocation.channels.filter { $0.value.expires + Self.channelCoolDown <= now }
            for (number, channel) in stale {
                allocations[client]?.channels[number] = nil
                allocations[client]?.channelByPeer[channel.peer] = nil
                channelCount -= 1
            }
        }
        cachedTimeout = nil
    }

    /// The next expiry of an allocation or a channel's cool-down.
    public func pollTimeout() -> Instant? {
        if let cached = cachedTimeout { return cached }
        var earliest: Instant?
        for allocation in allocations.values {
            earliest = min(earliest ?? allocation.expires, allocation.expires)
            for channel in allocation.channels.values {
                earliest = min(earliest ?? channel.expires, channel.expires + Self.channelCoolDown)
            }
        }
        cachedTimeout = .some(earliest)
        return earliest
    }

    func dropped() -> ClientOutcome {
        statistics.dropped += 1
        return .drop
    }

    /// Whether `client` holds a live allocation.
    public func holdsAllocation(_ client: RelayClient) -> Bool {
        allocations[client] != nil
    }

    /// A client's stream closed: its allocation goes with it (RFC 8656 §3), and its nonce.
    public func streamClosed(_ address: SocketAddress, now: Instant) {
        let client = RelayClient(address: address, transport: .stream)
        nonces[client] = nil
        free(client, now: now)
    }

    func free(_ client: RelayClient, now: Instant) {
        guard let allocation = allocations.removeValue(forKey: client) else { return }
        channelCount -= allocation.channels.count
        clientByPort[allocation.port] = nil
        if clientByUsername[allocation.username] == client { clientByUsername[allocation.username] = nil }
        events.append(.portClosed(port: allocation.port))
    }
}

/// One client's allocation: its relayed port on one or both families, and its channels.
struct Allocation {
    let username: String
    let port: UInt16
    let families: [IpVersion]
    var expires: Instant
    var channels: [UInt16: Channel] = [:]
    var channelByPeer: [SocketAddress: UInt16] = [:]
}

struct Channel {
    let peer: SocketAddress
    /// Bound until then; reserved for the cool-down after.
    var expires: Instant
}

struct Nonce {
    var value: String
    var uses: Int
}
