/// An ICMPv4 message decoded losslessly: combinations this library does not name stay `unknown`.
public enum Icmpv4Message: Hashable, Sendable {
    case echoReply(identifier: UInt16, sequence: UInt16)
    case echoRequest(identifier: UInt16, sequence: UInt16)
    case destinationUnreachable(Icmpv4Unreachable)
    case timeExceeded(code: UInt8)
    case unknown(type: UInt8, code: UInt8, restOfHeader: UInt32)

    public init(type: UInt8, code: UInt8, restOfHeader rest: UInt32) {
        let high = UInt16(truncatingIfNeeded: rest >> 16)
        let low = UInt16(truncatingIfNeeded: rest)
        switch (type, code) {
        case (0, 0): self = .echoReply(identifier: high, sequence: low)
        case (8, 0): self = .echoRequest(identifier: high, sequence: low)
        case (3, _): self = .destinationUnreachable(Icmpv4Unreachable(code: code, nextHopMtu: low))
        case (11, _): self = .timeExceeded(code: code)
        default: self = .unknown(type: type, code: code, restOfHeader: rest)
        }
    }
}

/// The codes of ICMPv4 Destination Unreachable (type 3).
public enum Icmpv4Unreachable: Hashable, Sendable {
    case network
    case host
    case port
    case fragmentationNeeded(nextHopMtu: UInt16)
    case filterProhibited
    case other(code: UInt8)

    init(code: UInt8, nextHopMtu: UInt16) {
        switch code {
        case 0: self = .network
        case 1: self = .host
        case 3: self = .port
        case 4: self = .fragmentationNeeded(nextHopMtu: nextHopMtu)
        case 13: self = .filterProhibited
        default: self = .other(code: code)
        }
    }
}

/// An ICMPv6 message decoded losslessly: combinations this library does not name stay `unknown`.
public enum Icmpv6Message: Hashable, Sendable {
    case destinationUnreachable(Icmpv6Unreachable)
    case packetTooBig(mtu: UInt32)
    case timeExceeded(code: UInt8)
    case echoRequest(identifier: UInt16, sequence: UInt16)
    case echoReply(identifier: UInt16, sequence: UInt16)
    case unknown(type: UInt8, code: UInt8, restOfHeader: UInt32)

    public init(type: UInt8, code: UInt8, restOfHeader rest: UInt32) {
        let high = UInt16(truncatingIfNeeded: rest >> 16)
        let low = UInt16(truncatingIfNeeded: rest)
        switch (type, code) {
        case (1, _): self = .destinationUnreachable(Icmpv6Unreachable(code: code))
        case (2, 0): self = .packetTooBig(mtu: rest)
        case (3, _): self = .timeExceeded(code: code)
        case (128, 0): self = .echoRequest(identifier: high, sequence: low)
        case (129, 0): self = .echoReply(identifier: high, sequence: low)
        default: self = .unknown(type: type, code: code, restOfHeader: rest)
        }
    }
}

/// The codes of ICMPv6 Destination Unreachable (type 1).
public enum Icmpv6Unreachable: Hashable, Sendable {
    case noRoute
    case prohibited
    case beyondScope
    case address
    case port
    case other(code: UInt8)

    init(code: UInt8) {
        switch code {
        case 0: self = .noRoute
        case 1: self = .prohibited
        case 2: self = .beyondScope
        case 3: self = .address
        case 4: self = .port
        default: self = .other(code: code)
        }
    }
}

extension IpPacket {
    /// The decoded ICMPv4 message, or `nil` when the packet is not ICMPv4.
    public var icmpv4Message: Icmpv4Message? {
        guard transport == .icmpv4, let header = icmp else { return nil }
        return Icmpv4Message(type: header.type, code: header.code, restOfHeader: header.restOfHeader)
    }

    /// The decoded ICMPv6 message, or `nil` when the packet is not ICMPv6.
    public var icmpv6Message: Icmpv6Message? {
        guard transport == .icmpv6, let header = icmp else { return nil }
        return Icmpv6Message(type: header.type, code: header.code, restOfHeader: header.restOfHeader)
    }
}
