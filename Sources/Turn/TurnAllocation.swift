import SansIO
import Stun

/// A sans-IO TURN client allocation on one relay (spec `snownet.md` §3): socket selection by BINDING, Allocate
/// with long-term credentials and the 401/438 nonce dance, Refresh at half the lifetime, BINDING keepalives,
/// channels, ChannelData. It works with Firezone's relay (realm `firezone`, every response signed) and with
/// standard servers such as coturn (401/438 unsigned, any realm).
///
/// ```swift
/// let allocation = TurnAllocation(server: RelayServer(ipv4: relayAddress), credentials: credentials, now: now)
/// while let transmit = allocation.pollTransmit() { socket.send(transmit.payload, to: transmit.destination) }
/// _ = allocation.handle(datagram, from: source, now: now)   // STUN from the relay
/// while let event = allocation.pollEvent() { … }             // candidates, allocated, failed
/// allocation.handleTimeout(now: now)                         // at allocation.pollTimeout()
/// ```
public final class TurnAllocation {
    public let server: RelayServer
    public let credentials: TurnCredentials
    let software: String
    var random: AnyRandomGenerator

    /// The relay address the first BINDING answer came from; all TURN traffic goes there.
    public internal(set) var activeSocket: SocketAddress?
    /// The relayed addresses of the current allocation (one per family).
    public internal(set) var relayAddresses: [SocketAddress] = []
    /// Our address as the relay saw it.
    public internal(set) var serverReflexiveAddresses: [SocketAddress] = []
    /// Our local socket addresses that reached the relay.
    public internal(set) var hostAddresses: [SocketAddress] = []

    var realm: String?
    var nonce: String?
    var key: [UInt8]?
    var lifetime: Duration = .zero
    var allocatedAt: Instant?
    var requestsAdditionalFamily = true
    /// REQUESTED-ADDRESS-FAMILY, sent after a 440 from a relay without IPv4 (Firezone's client never sends it).
    var requestedFamily: UInt8?
    var reallocateAfterDelete = false
    var lastKeepalive: Instant?
    var receivedAnyResponse = false
    var failure: AllocationFailure?

    var requests: [TransactionId: PendingRequest] = [:]
    var channels: [UInt16: Channel] = [:]
    var channelByPeer: [SocketAddress: UInt16] = [:]
    var bufferedBinds: [SocketAddress] = []
    /// Peers whose CHANNEL-BIND was refused while a REFRESH finds out whether the allocation still exists:
    /// bound again on the new allocation if it did not.
    var bindsAwaitingProbe: [SocketAddress] = []
    /// When the first ChannelData went out since the last one came in (``silenceBeforeProbe``).
    var unansweredSince: Instant?
    var nextChannel = ChannelData.channelRange.lowerBound
    var transmits: [Transmit] = []
    var events: [AllocationEvent] = []

    /// Counters for metrics: responses ignored because their integrity did not verify or they were unexpected.
    public internal(set) var ignoredResponses = 0

    public init(
        server: RelayServer, credentials: TurnCredentials, software: String = "snownet", now: Instant,
        random: any RandomNumberGenerator = SystemRandomNumberGenerator()
    ) {
        self.server = server
        self.credentials = credentials
        self.software = software
        self.random = AnyRandomGenerator(base: random)
        realm = credentials.realm
        key = credentials.realm.map { StunKey.longTerm(username: credentials.username, realm: $0, password: credentials.password) }
        for address in server.addresses { sendBinding(to: address, now: now) }
    }

    /// Whether an allocation exists.
    public var isAllocated: Bool { allocatedAt != nil }

    /// Why the allocation gave up, if it did; a failed allocation sends nothing more and can be freed.
    public var failureReason: AllocationFailure? { failure }

    public func pollTransmit() -> Transmit? {
        transmits.isEmpty ? nil : transmits.removeFirst()
    }

    public func pollEvent() -> AllocationEvent? {
        events.isEmpty ? nil : events.removeFirst()
    }

    /// Asks for a new BINDING-checked allocation if suspended, or probes the relay's liveness with a
    /// 1-second single-shot REFRESH (spec §3.3).
    public func refresh(now: Instant) {
        guard failure == nil else { return }
        if activeSocket == nil {
            for address in server.addresses { sendBinding(to: address, now: now) }
        } else if isAllocated {
            sendRefresh(lifetime: nil, now: now, schedule: .probe)
        } else if !requests.values.contains(where: { $0.kind == .allocate }) {
            sendAllocate(now: now)
        }
    }

    /// Deletes the allocation on the relay (REFRESH with LIFETIME 0).
    public func deallocate(now: Instant) {
        guard isAllocated else { return }
        sendRefresh(lifetime: 0, now: now)
    }
}

/// The relay's addresses: IPv4, IPv6, or both (port normally 3478), and how they are reached.
public struct RelayServer: Hashable, Sendable {
    public var ipv4: SocketAddress?
    public var ipv6: SocketAddress?
    /// UDP, or a stream the IO layer carries (RFC 8656 §3): over a stream the BINDING's mapped address is the
    /// connection's, so the allocation offers no host or server-reflexive candidate, only relayed ones.
    public var transport: RelayTransport

    public init(ipv4: SocketAddress? = nil, ipv6: SocketAddress? = nil, transport: RelayTransport = .udp) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.transport = transport
    }

    public var addresses: [SocketAddress] { [ipv4, ipv6].compactMap { $0 } }
}

/// How a client reaches a relay: datagrams, or TURN over TCP or TLS for networks that block UDP.
public enum RelayTransport: Hashable, Sendable, CustomStringConvertible {
    case udp
    case tcp
    /// TLS, checking the relay's certificate for `serverName` (a DNS name, or the address itself).
    case tls(serverName: String)

    public var isStream: Bool { self != .udp }

    public var description: String {
        switch self {
        case .udp: "udp"
        case .tcp: "tcp"
        case .tls: "tls"
        }
    }
}

/// Long-term credentials. Firezone's portal mints them per relay; coturn takes a static user or TURN REST
/// API credentials (`use-auth-secret`).
public struct TurnCredentials: Hashable, Sendable {
    public var username: String
    public var password: String
    /// The realm the relay must name (`"firezone"` for Firezone's relay), or `nil` to use the one the
    /// server announces in its 401.
    public var realm: String?

    public init(username: String, password: String, realm: String?) {
        self.username = username
        self.password = password
        self.realm = realm
    }
}

/// A datagram the allocation wants sent.
public struct Transmit: Hashable, Sendable {
    public var destination: SocketAddress
    public var payload: [UInt8]
}

/// What the allocation tells its owner.
public enum AllocationEvent: Hashable, Sendable {
    /// A local socket address that reaches the relay (a host candidate).
    case hostCandidate(SocketAddress)
    /// Our public address as the relay saw it (a server-reflexive candidate).
    case serverReflexiveCandidate(SocketAddress)
    /// A relayed address (a relay candidate).
    case relayCandidate(SocketAddress)
    /// A relay candidate that no longer works (allocation lost, expired or deleted).
    case relayCandidateInvalidated(SocketAddress)
    /// The allocation exists (again) with this lifetime.
    case allocated(lifetime: Duration)
    case channelBound(peer: SocketAddress, channel: UInt16)
    /// A REFRESH was answered: the allocation lives on for `lifetime`.
    case refreshed(lifetime: Duration)
    /// A REFRESH asks the relay whether the allocation still exists, and why.
    case probing(ProbeReason)
    /// The relay answered 437: it no longer has the allocation; a new ALLOCATE is on its way.
    case allocationMissing
    /// The allocation gave up; see ``AllocationFailure``.
    case failed(AllocationFailure)
}

/// Why an allocation asks the relay whether it still exists.
public enum ProbeReason: Hashable, Sendable, CustomStringConvertible {
    /// The relay refused a CHANNEL-BIND with this code (other than 401/438/437).
    case channelBindRefused(code: Int)
    /// ChannelData went out for ``TurnAllocation/silenceBeforeProbe`` with none back.
    case channelDataUnanswered

    public var description: String {
        switch self {
        case .channelBindRefused(let code): "CHANNEL-BIND refused with \(code)"
        case .channelDataUnanswered: "no ChannelData back for \(TurnAllocation.silenceBeforeProbe)"
        }
    }
}

/// Why an allocation gave up.
public enum AllocationFailure: Hashable, Sendable, CustomStringConvertible {
    /// 401 although our request carried a nonce: the username or password is wrong.
    case badCredentials
    /// The relay named a realm other than the one configured.
    case realmMismatch(expected: String, received: String)
    /// No response to any request: is UDP to the relay blocked?
    case noResponse
    /// 420: the relay does not understand an attribute we need.
    case unknownAttribute([UInt16])
    /// Another error response to ALLOCATE.
    case serverError(code: Int, reason: String)

    public var description: String {
        switch self {
        case .badCredentials: "the relay rejected our credentials"
        case let .realmMismatch(expected, received): "the relay's realm \"\(received)\" is not \"\(expected)\""
        case .noResponse: "the relay never answered"
        case .unknownAttribute(let types): "the relay does not understand attributes \(types)"
        case let .serverError(code, reason): "the relay answered \(code) \(reason)"
        }
    }
}

struct PendingRequest {
    enum Kind: Equatable {
        case binding
        case allocate
        case refresh(lifetime: UInt32?)
        case channelBind(channel: UInt16, peer: SocketAddress)
    }

    var kind: Kind
    var destination: SocketAddress
    var transaction: StunTransaction
    var authenticated: Bool
    var carriedNonce: Bool
    /// The request before signing, to re-sign it under a new transaction id.
    var method: StunMethod
    var attributes: [StunAttribute]
}

struct Channel {
    var peer: SocketAddress
    var bound: Bool
    var boundAt: Instant
    var lastReceived: Instant?
}

/// A type-erased random number generator that can be passed `inout` to `random(using:)`.
struct AnyRandomGenerator: RandomNumberGenerator {
    var base: any RandomNumberGenerator
    mutating func next() -> UInt64 { base.next() }
}
