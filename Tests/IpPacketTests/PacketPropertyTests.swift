import IpPacket
import PropertyBased
import TestSupport
import Testing

/// A packet to build: UDP, TCP or ICMP echo over random IPv4 or IPv6 addresses.
struct PacketSpec: Sendable, CustomStringConvertible {
    enum Kind: Int, Sendable { case udp, tcp, icmpEcho }
    var kind: Kind
    var source: IpAddress
    var destination: IpAddress
    var sourcePort: UInt16
    var destinationPort: UInt16
    var payload: [UInt8]

    func build() throws -> IpPacket {
        switch kind {
        case .udp:
            try IpPacket.udp(source: source, destination: destination, sourcePort: sourcePort,
                             destinationPort: destinationPort, payload: payload)
        case .tcp:
            try IpPacket.tcp(source: source, destination: destination, sourcePort: sourcePort,
                             destinationPort: destinationPort, sequenceNumber: UInt32(sourcePort) << 16,
                             flags: [.ack, .psh], payload: payload)
        case .icmpEcho:
            try IpPacket.icmpEchoRequest(source: source, destination: destination, identifier: sourcePort,
                                         sequence: destinationPort, payload: payload)
        }
    }

    var description: String { "\(kind) \(source) -> \(destination) \(sourcePort) -> \(destinationPort), \(payload.count) B" }
}

enum PacketGen {
    static func address(v6: Bool, _ a: UInt64, _ b: UInt64) -> IpAddress {
        v6 ? .v6(IPv6Address(high: a, low: b)) : .v4(IPv4Address(UInt32(truncatingIfNeeded: a)))
    }

    static let spec = zip(
        Gen.int(in: 0...2), Gen.bool, Gen.uint64(), Gen.uint64(), Gen.uint64(), Gen.uint64(),
        Gen.uint16(), Gen.uint16(), Gen.uint8().array(of: 0...1100)
    ).map { kind, v6, a, b, c, d, sourcePort, destinationPort, payload in
        PacketSpec(kind: PacketSpec.Kind(rawValue: kind) ?? .udp,
                   source: address(v6: v6, a, b), destination: address(v6: v6, c, d),
                   sourcePort: sourcePort, destinationPort: destinationPort, payload: payload)
    }

    /// Operation, a 16-bit value, and two 64-bit words for an address.
    static let mutations = zip(Gen.int(in: 0...8), Gen.uint16(), Gen.uint64(), Gen.uint64()).array(of: 1...12)
}

@Suite(.offPool) struct PacketPropertyTests {
    @Test func buildThenParseGivesTheSameFields() async {
        await propertyCheck(count: 300, input: PacketGen.spec) { spec in
            let built = try spec.build()
            let parsed = try IpPacket(copying: built.bytes)
            #expect(parsed == built)
            #expect(parsed.source == spec.source)
            #expect(parsed.destination == spec.destination)
            #expect(parsed.ttl == 64)
            #expect(parsed.hasValidChecksums)
            #expect(parsed.layer4PayloadCount == spec.payload.count)
            switch spec.kind {
            case .udp:
                #expect(parsed.udp?.sourcePort == spec.sourcePort)
                #expect(parsed.udp?.destinationPort == spec.destinationPort)
                #expect(parsed.udp.map { parsed.bytes(in: $0.payloadRange) } == spec.payload)
                #expect(try parsed.sourceKey == .udp(spec.sourcePort))
                #expect(try parsed.destinationKey == .udp(spec.destinationPort))
            case .tcp:
                #expect(parsed.tcp?.sourcePort == spec.sourcePort)
                #expect(parsed.tcp?.destinationPort == spec.destinationPort)
                #expect(parsed.tcp?.flags == [.ack, .psh])
                #expect(parsed.tcp?.window == 128)
                #expect(parsed.tcp.map { parsed.bytes(in: $0.payloadRange) } == spec.payload)
            case .icmpEcho:
                #expect(try parsed.sourceKey == .icmpEcho(identifier: spec.sourcePort))
                #expect(try parsed.destinationKey == .icmpEcho(identifier: spec.sourcePort))
                #expect(try parsed.icmpError() == nil)
            }
        }
    }

    /// Any sequence of mutations on a packet with correct checksums leaves every checksum equal to a
    /// from-scratch recomputation, and every getter returns what its setter set.
    @Test func mutationsKeepChecksumsCorrect() async {
        await propertyCheck(count: 300, input: PacketGen.spec, PacketGen.mutations) { spec, mutations in
            var packet = try spec.build()
            for (operation, value, high, low) in mutations {
                let address = PacketGen.address(v6: packet.version == .v6, high, low)
                switch operation {
                case 0:
                    try packet.setSource(address)
                    #expect(packet.source == address)
                case 1:
                    try packet.setDestination(address)
                    #expect(packet.destination == address)
                case 2:
                    packet.setSourceKey(value)
                    #expect(try packet.sourceKey.value == value)
                case 3:
                    packet.setDestinationKey(value)
                    #expect(try packet.destinationKey.value == value)
                case 4:
                    try packet.translateDestination(address, sourceKey: value)
                    #expect(packet.destination == address)
                    #expect(try packet.sourceKey.value == value)
                case 5:
                    try packet.translateSource(address, destinationKey: value)
                    #expect(packet.source == address)
                    #expect(try packet.destinationKey.value == value)
                case 6:
                    let ecn = Ecn(rawValue: UInt8(value & 3)) ?? .notEct
                    packet.setEcn(ecn)
                    #expect(packet.ecn == ecn)
                case 7:
                    packet.setTtl(UInt8(truncatingIfNeeded: value))
                    #expect(packet.ttl == UInt8(truncatingIfNeeded: value))
                default:
                    let before = packet.ecn
                    packet.applyEcnFromTransport(.ce)
                    #expect(packet.ecn == (before == .notEct ? .notEct : .ce))
                }
                #expect(packet.hasValidChecksums, "after operation \(operation) on \(packet)")
                var recomputed = packet
                recomputed.computeChecksums()
                #expect(checksumsEquivalent(packet, recomputed))
            }
        }
    }

    /// Copies of a packet have value semantics: mutating one leaves the other as it was.
    @Test func copiesAreIndependent() async {
        await propertyCheck(count: 50, input: PacketGen.spec) { spec in
            let original = try spec.build()
            let before = original.bytes
            var copy = original
            copy.setTtl(original.ttl &+ 1)
            #expect(original.bytes == before)
            #expect(copy.ttl == original.ttl &+ 1)
        }
    }
}

/// Same bytes except that checksum fields may differ between one's complement's two zeros.
func checksumsEquivalent(_ lhs: IpPacket, _ rhs: IpPacket) -> Bool {
    var left = lhs.bytes
    var right = rhs.bytes
    guard left.count == right.count else { return false }
    var offsets: [Int] = []
    if lhs.version == .v4 { offsets.append(10) }
    switch lhs.transport {
    case .tcp: offsets.append(lhs.transportOffset + 16)
    case .udp: offsets.append(lhs.transportOffset + 6)
    case .icmpv4, .icmpv6: offsets.append(lhs.transportOffset + 2)
    case .other: break
    }
    for offset in offsets {
        let a = UInt16(left[offset]) << 8 | UInt16(left[offset + 1])
        let b = UInt16(right[offset]) << 8 | UInt16(right[offset + 1])
        guard InternetChecksum.equivalent(a, b) else { return false }
        left[offset] = 0; left[offset + 1] = 0
        right[offset] = 0; right[offset + 1] = 0
    }
    return left == right
}
