import SansIO

/// An ICE candidate: where a peer may be reached, and how it was learned.
public struct IceCandidate: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case host
        case serverReflexive = "srflx"
        case peerReflexive = "prflx"
        case relayed = "relay"

        /// RFC 8445 type preference, with str0m's values (spec `snownet.md` §2.3).
        public var typePreference: UInt32 {
            switch self {
            case .host: 126
            case .peerReflexive: 110
            case .serverReflexive: 100
            case .relayed: 2
            }
        }

        /// The first local preference str0m hands out for this kind (before the family and count adjustments).
        var localPreferenceStart: UInt32 {
            switch self {
            case .host: 65535
            case .peerReflexive: 49151
            case .serverReflexive: 32767
            case .relayed: 16383
            }
        }
    }

    public var kind: Kind
    /// The transport address of the candidate.
    public var address: SocketAddress
    /// For local candidates, the address packets are sent from (the host address, or for relay candidates
    /// the relayed address itself); for remote candidates the same as `address`.
    public var base: SocketAddress
    public var priority: UInt32
    public var foundation: String
    /// The ufrag of the agent the candidate belongs to, when it was signalled with one.
    public var ufrag: String?

    public init(kind: Kind, address: SocketAddress, base: SocketAddress? = nil, priority: UInt32,
                foundation: String? = nil, ufrag: String? = nil) {
        self.kind = kind
        self.address = address
        self.base = base ?? address
        self.priority = priority
        self.ufrag = ufrag
        self.foundation = foundation ?? Self.foundation(kind: kind, base: base ?? address, priority: priority)
    }

    /// RFC 8445 §5.1.2.1 with component 1: `(type << 24) | (local << 8) | 255`.
    public static func priority(kind: Kind, localPreference: UInt32) -> UInt32 {
        kind.typePreference << 24 | (localPreference & 0xFFFF) << 8 | 255
    }

    /// The default local preference of a candidate that is not added to an agent: 65535 for IPv6, 65534 for
    /// IPv4 (spec §2.3).
    public static func defaultLocalPreference(for address: SocketAddress) -> UInt32 {
        address.ip.version == .v6 ? 65535 : 65534
    }

    /// The PRIORITY attribute of a check sent from this (local) candidate: its priority with the type
    /// preference of a peer-reflexive candidate.
    public var checkPriority: UInt32 {
        IceCandidate.Kind.peerReflexive.typePreference << 24 | (priority & 0x00FF_FFFF)
    }

    /// A foundation as str0m forms it: the byte-swapped priority in hex, then a hash of kind and base IP.
    static func foundation(kind: Kind, base: SocketAddress, priority: UInt32) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in Array("\(kind.rawValue) \(base.ip) udp".utf8) {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        return hex(priority.byteSwapped, width: 8) + hex(hash, width: 16)
    }

    public var description: String { IceCandidateString.format(self) }
}

func hex<T: BinaryInteger>(_ value: T, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
