import SansIO

/// How the relay checks long-term credentials (realm `firezone`).
public enum RelayAuthentication: Sendable {
    /// Firezone's scheme (spec `snownet.md` §3.12): username `<unix expiry>:<salt>`, password
    /// base64(SHA-256("<expiry>:<secret>:<salt>")) without padding. A new ALLOCATE frees the username's older
    /// allocation (#12319).
    case firezone(secret: String)
    /// coturn's REST API credentials (`use-auth-secret`): username `<unix expiry>[:<user>]`, password
    /// base64(HMAC-SHA1(secret, username)). Several allocations may share a username.
    case coturnRestApi(secret: String)
}

/// What a relay is: its public addresses, ports, credentials and limits.
public struct RelayConfiguration: Sendable {
    /// The addresses clients reach and peers see; at least one.
    public var publicIPv4: IPv4Address?
    public var publicIPv6: IPv6Address?
    public var listenPort: UInt16 = 3478
    /// Where allocations' relayed ports come from.
    public var ports: ClosedRange<UInt16> = 49152...65535
    public var authentication: RelayAuthentication
    public var realm = "firezone"
    /// SOFTWARE on every answer.
    public var software = "firezone-relay; rev=swift"
    /// Requests one nonce signs before it is stale (Firezone: 10 000).
    public var nonceUses = 10_000
    /// At most this many client sockets hold a nonce; beyond it the oldest are forgotten.
    public var maximumNonces = 65_536

    public init(publicIPv4: IPv4Address?, publicIPv6: IPv6Address? = nil, authentication: RelayAuthentication) {
        self.publicIPv4 = publicIPv4
        self.publicIPv6 = publicIPv6
        self.authentication = authentication
    }

    /// Whether the relay can relay to and from `version`.
    /// The channel numbers CHANNEL-BIND accepts: RFC 8656's 0x4000–0x4FFF, which Firezone's clients demultiplex
    /// by; with coturn's REST credentials also RFC 5766's 0x5000–0x7FFE, which coturn's own clients still use.
    public var channelNumbers: ClosedRange<UInt16> {
        if case .coturnRestApi = authentication { 0x4000...0x7FFE } else { 0x4000...0x4FFF }
    }

    public func serves(_ version: IpVersion) -> Bool {
        version == .v4 ? publicIPv4 != nil : publicIPv6 != nil
    }

    func publicAddress(_ version: IpVersion, port: UInt16) -> SocketAddress? {
        switch version {
        case .v4: publicIPv4.map { SocketAddress(ip: .v4($0), port: port) }
        case .v6: publicIPv6.map { SocketAddress(ip: .v6($0), port: port) }
        }
    }
}

/// What the IO layer must do besides sending answers: open or close an allocation's relayed port.
public enum RelayEvent: Hashable, Sendable {
    /// Bind UDP `port` on these families and feed what arrives there to ``RelayCore/relayFromPeer(_:count:from:port:now:)``.
    case portOpened(port: UInt16, families: [IpVersion])
    /// Close `port`: its allocation is gone.
    case portClosed(port: UInt16)
}

/// A ChannelData payload to send from an allocation's port to its peer.
public struct PeerBound: Hashable, Sendable {
    public var port: UInt16
    public var peer: SocketAddress
    /// The payload within the datagram the client sent.
    public var payload: Range<Int>
}

/// A peer's datagram framed as ChannelData, to send from the listening port to the client (on its stream, with the
/// padding a stream needs, when it came over TCP or TLS).
public struct ClientBound: Hashable, Sendable {
    public var client: SocketAddress
    public var transport: ClientTransport
    /// Header and payload, from the start of the buffer.
    public var count: Int
}

/// What the relay counted: answers by class and code, relayed traffic by direction, and what it refused.
public struct RelayStatistics: Hashable, Sendable {
    public var successResponses = 0
    /// Error responses by code.
    public var errorResponses: [Int: Int] = [:]
    public var authenticationFailures = 0
    public var relayedToPeers = 0
    public var relayedToPeersBytes = 0
    public var relayedToClients = 0
    public var relayedToClientsBytes = 0
    /// Datagrams that were not a request, ChannelData of a bound channel or a peer's data for one: dropped.
    public var dropped = 0
    /// Datagrams from source port 0 (#14036).
    public var fromPortZero = 0
    public var allocationsFreedByUsername = 0
    /// Allocations freed because their port could not be opened.
    public var portsUnavailable = 0

    public init() {}
}

/// How a client reaches the relay: datagrams on the UDP port, or a TCP connection (TLS included: the relay's IO
/// ends TLS before the core sees a frame).
public enum ClientTransport: Hashable, Sendable, CustomStringConvertible {
    case udp
    case stream

    public var description: String { self == .udp ? "udp" : "stream" }
}

/// A client as RFC 8656's 5-tuple names it: its address and the transport, since a UDP socket and a TCP connection
/// from the same address and port are different clients.
public struct RelayClient: Hashable, Sendable, CustomStringConvertible {
    public var address: SocketAddress
    public var transport: ClientTransport

    public init(address: SocketAddress, transport: ClientTransport) {
        self.address = address
        self.transport = transport
    }

    public var description: String { transport == .udp ? "\(address)" : "\(address) (stream)" }
}
