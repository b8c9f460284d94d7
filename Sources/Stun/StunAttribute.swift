import SansIO

/// The attributes ICE and TURN use, decoded; anything else is kept as `.other`.
public enum StunAttribute: Hashable, Sendable {
    case mappedAddress(SocketAddress)
    case xorMappedAddress(SocketAddress)
    case username(String)
    /// USERHASH (RFC 8489), passed through.
    case userhash([UInt8])
    case errorCode(code: Int, reason: String)
    case realm(String)
    case nonce(String)
    case unknownAttributes([UInt16])
    case software(String)
    case alternateServer(SocketAddress)
    case priority(UInt32)
    case useCandidate
    case iceControlled(tieBreaker: UInt64)
    case iceControlling(tieBreaker: UInt64)
    case xorPeerAddress(SocketAddress)
    case xorRelayedAddress(SocketAddress)
    case lifetime(seconds: UInt32)
    case channelNumber(UInt16)
    /// The protocol number of REQUESTED-TRANSPORT (17 for UDP).
    case requestedTransport(UInt8)
    case data([UInt8])
    /// 0x01 IPv4, 0x02 IPv6.
    case requestedAddressFamily(UInt8)
    case additionalAddressFamily(UInt8)
    /// An optional (≥ 0x8000) attribute this codec does not interpret, kept verbatim.
    case other(type: UInt16, value: [UInt8])

    /// The attribute's type code.
    public var type: UInt16 {
        switch self {
        case .mappedAddress: StunAttributeType.mappedAddress
        case .xorMappedAddress: StunAttributeType.xorMappedAddress
        case .username: StunAttributeType.username
        case .userhash: StunAttributeType.userhash
        case .errorCode: StunAttributeType.errorCode
        case .realm: StunAttributeType.realm
        case .nonce: StunAttributeType.nonce
        case .unknownAttributes: StunAttributeType.unknownAttributes
        case .software: StunAttributeType.software
        case .alternateServer: StunAttributeType.alternateServer
        case .priority: StunAttributeType.priority
        case .useCandidate: StunAttributeType.useCandidate
        case .iceControlled: StunAttributeType.iceControlled
        case .iceControlling: StunAttributeType.iceControlling
        case .xorPeerAddress: StunAttributeType.xorPeerAddress
        case .xorRelayedAddress: StunAttributeType.xorRelayedAddress
        case .lifetime: StunAttributeType.lifetime
        case .channelNumber: StunAttributeType.channelNumber
        case .requestedTransport: StunAttributeType.requestedTransport
        case .data: StunAttributeType.data
        case .requestedAddressFamily: StunAttributeType.requestedAddressFamily
        case .additionalAddressFamily: StunAttributeType.additionalAddressFamily
        case .other(let type, _): type
        }
    }
}

/// Attribute type codes (RFC 8489, RFC 8656, RFC 8445, RFC 8656 §18).
public enum StunAttributeType {
    public static let mappedAddress: UInt16 = 0x0001
    public static let username: UInt16 = 0x0006
    public static let messageIntegrity: UInt16 = 0x0008
    public static let errorCode: UInt16 = 0x0009
    public static let unknownAttributes: UInt16 = 0x000A
    public static let channelNumber: UInt16 = 0x000C
    public static let lifetime: UInt16 = 0x000D
    public static let xorPeerAddress: UInt16 = 0x0012
    public static let data: UInt16 = 0x0013
    public static let realm: UInt16 = 0x0014
    public static let nonce: UInt16 = 0x0015
    public static let xorRelayedAddress: UInt16 = 0x0016
    public static let requestedAddressFamily: UInt16 = 0x0017
    public static let requestedTransport: UInt16 = 0x0019
    public static let messageIntegritySha256: UInt16 = 0x001C
    public static let userhash: UInt16 = 0x001E
    public static let xorMappedAddress: UInt16 = 0x0020
    public static let priority: UInt16 = 0x0024
    public static let useCandidate: UInt16 = 0x0025
    public static let additionalAddressFamily: UInt16 = 0x8000
    public static let software: UInt16 = 0x8022
    public static let alternateServer: UInt16 = 0x8023
    public static let fingerprint: UInt16 = 0x8028
    public static let iceControlled: UInt16 = 0x8029
    public static let iceControlling: UInt16 = 0x802A

    /// Types below 0x8000 must be understood by the receiver.
    public static func isComprehensionRequired(_ type: UInt16) -> Bool { type < 0x8000 }
}
