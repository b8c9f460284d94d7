/// Why a packet was rejected or an operation refused, with whatever the packet revealed before the failure.
///
/// It prints as one sentence, e.g.
/// `IPv4 packet 10.0.0.1 -> 10.0.0.2 (UDP 53 -> 5353, length 12, checksum 0x1c46): UDP length (12) does not match length of IP payload (20)`.
/// Creating one never allocates, so the data path can throw it freely.
public struct IpPacketError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The rule that failed.
    public var reason: Reason
    /// What was known about the packet: nothing for an empty one, more the further parsing got.
    public var context: Context

    public init(_ reason: Reason, context: Context = Context()) {
        self.reason = reason
        self.context = context
    }

    public enum Reason: Hashable, Sendable {
        // Construction
        case empty
        case tooLarge(length: Int)
        case exceedsBuffer(offset: Int, length: Int, capacity: Int)
        case unsupportedVersion(UInt8)
        case truncatedIPv4Header(length: Int)
        case ihlTooSmall(ihl: UInt8)
        case truncatedIPv4Options(headerLength: Int, length: Int)
        case ipv4TotalLengthMismatch(totalLength: Int, length: Int)
        case fragmented
        case truncatedIPv6Header(length: Int)
        case ipv6PayloadLengthMismatch(payloadLength: Int, length: Int)
        case truncatedExtensionHeader(header: UInt8, offset: Int, length: Int)
        case truncatedUdpHeader(available: Int)
        case udpLengthMismatch(udpLength: Int, ipPayloadLength: Int)
        case truncatedTcpHeader(available: Int)
        case tcpDataOffsetTooSmall(dataOffset: UInt8)
        case truncatedTcpOptions(headerLength: Int, available: Int)
        case truncatedIcmpHeader(available: Int)
        case icmpv4InIPv6
        case icmpv6InIPv4
        // Mutators and builders
        case notIPv4
        case notIPv6
        case mixedVersions
        case tcpOptionsNotMultipleOfFour(length: Int)
        case tcpOptionsTooLong(length: Int)
        case payloadTooLarge(packetLength: Int)
        // Routing keys and ICMP errors
        case unsupportedIcmpv4Type(UInt8)
        case unsupportedIcmpv6Type(UInt8)
        case unsupportedIpPayload(UInt8)
        case unsupportedIcmpMessage(type: UInt8, code: UInt8)
        case embeddedPacketTooShort(available: Int)
        case embeddedVersionMismatch(outer: IpVersion, embedded: UInt8)
        case embeddedL4TooShort(protocol: UInt8, available: Int)
        case embeddedIcmpNotEchoRequest(type: UInt8, code: UInt8)
        case embeddedUnsupportedProtocol(UInt8)
        case notAnIcmpError
    }

    /// The fields read before the failing rule; each is `nil` when parsing did not get that far.
    public struct Context: Hashable, Sendable {
        public var version: IpVersion?
        public var source: IpAddress?
        public var destination: IpAddress?
        public var nextHeader: UInt8?
        public var transportHeader: TransportHeaderSummary?

        public init(
            version: IpVersion? = nil, source: IpAddress? = nil, destination: IpAddress? = nil,
            nextHeader: UInt8? = nil, transportHeader: TransportHeaderSummary? = nil
        ) {
            self.version = version
            self.source = source
            self.destination = destination
            self.nextHeader = nextHeader
            self.transportHeader = transportHeader
        }
    }

    /// The transport header fields that could be read, for the error's sentence.
    public enum TransportHeaderSummary: Hashable, Sendable {
        case udp(sourcePort: UInt16, destinationPort: UInt16, length: UInt16, checksum: UInt16)
        case tcp(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, dataOffset: UInt8)
        case icmp(type: UInt8, code: UInt8)
        case ports(sourcePort: UInt16, destinationPort: UInt16)
    }

    public var description: String {
        let subject = context.subject
        return subject.isEmpty ? reason.description : "\(subject): \(reason.description)"
    }
}

extension IpPacketError.Context {
    /// "IPv4 packet 10.0.0.1 -> 10.0.0.2 (UDP 53 -> 5353, length 12, checksum 0x1c46)", as far as known.
    var subject: String {
        guard let version else { return "" }
        var text = "\(version) packet"
        if let source, let destination { text += " \(source) -> \(destination)" }
        guard let nextHeader else { return text }
        let name = IpProtocolName.name(of: nextHeader)
        guard let transportHeader else { return text + " (\(name))" }
        switch transportHeader {
        case let .udp(sourcePort, destinationPort, length, checksum):
            text += " (\(name) \(sourcePort) -> \(destinationPort), length \(length), checksum 0x\(hex(checksum)))"
        case let .tcp(sourcePort, destinationPort, sequenceNumber, dataOffset):
            text += " (\(name) \(sourcePort) -> \(destinationPort), seq \(sequenceNumber), data offset \(dataOffset))"
        case let .icmp(type, code):
            text += " (\(name) type \(type) code \(code))"
        case let .ports(sourcePort, destinationPort):
            text += " (\(name) \(sourcePort) -> \(destinationPort))"
        }
        return text
    }

    private func hex(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}

extension IpPacketError.Reason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .empty: "Empty packet"
        case .tooLarge(let length): "Packet too large (len: \(length))"
        case let .exceedsBuffer(offset, length, capacity):
            "Packet of \(length) bytes at offset \(offset) exceeds its buffer of \(capacity) bytes"
        case .unsupportedVersion(let version): "Unsupported IP version: \(version)"
        case .truncatedIPv4Header(let length): "IPv4 header needs 20 bytes but the packet has \(length)"
        case .ihlTooSmall(let ihl): "IPv4 IHL must be at least 5 (is \(ihl))"
        case let .truncatedIPv4Options(headerLength, length):
            "IPv4 header length (\(headerLength)) exceeds packet length (\(length))"
        case let .ipv4TotalLengthMismatch(totalLength, length):
            "IPv4 total length (\(totalLength)) does not match packet length (\(length))"
        case .fragmented: "Fragmented IP packets are unsupported"
        case .truncatedIPv6Header(let length): "IPv6 header needs 40 bytes but the packet has \(length)"
        case let .ipv6PayloadLengthMismatch(payloadLength, length):
            "IPv6 payload length (\(payloadLength)) does not match packet length (\(length))"
        case let .truncatedExtensionHeader(header, offset, length):
            "IPv6 extension header \(header) at offset \(offset) is truncated (packet length \(length))"
        case .truncatedUdpHeader(let available): "UDP header needs 8 bytes but \(available) remain"
        case let .udpLengthMismatch(udpLength, ipPayloadLength):
            "UDP length (\(udpLength)) does not match length of IP payload (\(ipPayloadLength))"
        case .truncatedTcpHeader(let available): "TCP header needs 20 bytes but \(available) remain"
        case .tcpDataOffsetTooSmall(let dataOffset): "TCP data offset must be at least 5 (is \(dataOffset))"
        case let .truncatedTcpOptions(headerLength, available):
            "TCP header length (\(headerLength)) exceeds the \(available) bytes of IP payload"
        case .truncatedIcmpHeader(let available): "ICMP header needs 8 bytes but \(available) remain"
        case .icmpv4InIPv6: "ICMPv4 is only allowed in IPv4 packets"
        case .icmpv6InIPv4: "ICMPv6 is only allowed in IPv6 packets"
        case .notIPv4: "Not an IPv4 packet"
        case .notIPv6: "Not an IPv6 packet"
        case .mixedVersions: "IPs must be of the same version"
        case .tcpOptionsNotMultipleOfFour(let length): "TCP options length (\(length)) is not a multiple of 4"
        case .tcpOptionsTooLong(let length): "TCP options length (\(length)) exceeds 40 bytes"
        case .payloadTooLarge(let packetLength):
            "Payload makes a packet of \(packetLength) bytes, more than \(PacketLimits.maxIpPacketSize)"
        case .unsupportedIcmpv4Type(let type): "Unsupported ICMPv4 type \(type)"
        case .unsupportedIcmpv6Type(let type): "Unsupported ICMPv6 type \(type)"
        case .unsupportedIpPayload(let nextHeader):
            "Unsupported IP payload: \(IpProtocolName.name(of: nextHeader))"
        case let .unsupportedIcmpMessage(type, code): "ICMP message (type \(type), code \(code)) is not supported"
        case .embeddedPacketTooShort(let available):
            "Packet embedded in ICMP error has only \(available) bytes, too few for its IP header"
        case let .embeddedVersionMismatch(outer, embedded):
            "Packet embedded in an \(outer) ICMP error has IP version \(embedded)"
        case let .embeddedL4TooShort(nextHeader, available):
            "Packet embedded in ICMP error has \(available) bytes of \(IpProtocolName.name(of: nextHeader)) header, too few"
        case let .embeddedIcmpNotEchoRequest(type, code):
            "ICMP packet embedded in ICMP error is not an echo request (type \(type), code \(code))"
        case .embeddedUnsupportedProtocol(let nextHeader):
            "Packet embedded in ICMP error carries unsupported protocol \(IpProtocolName.name(of: nextHeader))"
        case .notAnIcmpError: "Packet is not an ICMP error"
        }
    }
}

/// Human-readable names of IP protocol numbers, as Firezone's debug output prints them.
public enum IpProtocolName {
    public static func name(of nextHeader: UInt8) -> String {
        switch nextHeader {
        case 1: "ICMP"
        case 2: "IGMP"
        case 6: "TCP"
        case 17: "UDP"
        case 41: "IPv6 (41)"
        case 47: "GRE (47)"
        case 50: "ESP (50)"
        case 51: "AH (51)"
        case 58: "IPv6-ICMP"
        case 132: "SCTP (132)"
        case 255: "FZ-P2P-CONTROL (255)"
        default: "protocol \(nextHeader)"
        }
    }
}
