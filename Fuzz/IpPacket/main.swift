// libFuzzer harness for the strict IP packet parser, its mutators, ICMP errors and builders
// (the properties of Firezone's `ip-packet` fuzz target, spec `tunnel-dns.md` §2.10).
//
// Input layout: byte 0 = number of mutations (low 4 bits); then 4 bytes per mutation (operation, a 16-bit
// value, an address selector); then 32 bytes of address material; the rest is the packet. Shorter inputs
// are a packet alone. Build and run with `scripts/fuzz IpPacket [seconds]`.
import IpPacket
import P2pControl

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIpPacket(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(UnsafeBufferPointer(start: data, count: size))
    guard input.packetBytes.count <= PacketLimits.maxIpPacketSize else { return 0 }

    let packet: IpPacket
    do {
        packet = try IpPacket(copying: input.packetBytes)
    } catch {
        check(!error.description.isEmpty, "every rejection prints a sentence")
        return 0
    }
    readEverything(packet)
    exerciseIcmpError(packet, input: input)

    var mutable = packet
    mutable.computeChecksums()
    check(mutable.hasValidChecksums, "computeChecksums leaves valid checksums: \(mutable)")
    for mutation in input.mutations {
        apply(mutation, to: &mutable, input: input)
        readEverything(mutable)
        check(mutable.hasValidChecksums, "checksums stay valid after \(mutation): \(mutable)")
        let reparsed = try? IpPacket(copying: mutable.bytes)
        check(reparsed?.transportOffset == mutable.transportOffset, "a mutated packet still parses the same")
    }
    checkUnreachableErrors(for: mutable)
    return 0
}

struct Mutation: CustomStringConvertible {
    var operation: UInt8
    var value: UInt16
    var selector: UInt8

    var description: String { "mutation \(operation % 10) value \(value)" }
}

struct FuzzInput {
    var mutations: [Mutation] = []
    var addressMaterial: [UInt8] = Array(repeating: 0, count: 32)
    var packetBytes: [UInt8]

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        let count = Int(bytes.first ?? 0) & 0x0F
        let headerLength = 1 + count * 4 + 32
        guard bytes.count >= headerLength else {
            packetBytes = Array(bytes)
            return
        }
        for index in 0..<count {
            let at = 1 + index * 4
            mutations.append(Mutation(
                operation: bytes[at], value: UInt16(bytes[at + 1]) << 8 | UInt16(bytes[at + 2]), selector: bytes[at + 3]))
        }
        addressMaterial = Array(bytes[(1 + count * 4)..<headerLength])
        packetBytes = Array(bytes[headerLength...])
    }

    func address(_ version: IpVersion, selector: UInt8) -> IpAddress {
        let base = Int(selector % 16)
        func byte(_ index: Int) -> UInt64 { UInt64(addressMaterial[(base + index) % 32]) }
        switch version {
        case .v4:
            return .v4(IPv4Address(UInt32(byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3))))
        case .v6:
            let high = (0..<8).reduce(UInt64(0)) { $0 << 8 | byte($1) }
            let low = (8..<16).reduce(UInt64(0)) { $0 << 8 | byte($1) }
            return .v6(IPv6Address(high: high, low: low))
        }
    }
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    guard !condition else { return }
    fatalError("property violated: \(message())")
}

/// Calls every accessor; a crash or a read out of bounds here is a bug.
func readEverything(_ packet: IpPacket) {
    _ = packet.source
    _ = packet.destination
    _ = packet.ecn
    _ = packet.ttl
    _ = packet.ipv4Header
    _ = packet.ipv6Header
    _ = packet.payloadRange
    check(packet.layer4PayloadCount >= 0, "layer 4 payload count is never negative")
    if let udp = packet.udp { check(udp.payloadRange.upperBound == packet.count, "UDP payload ends the packet") }
    if let tcp = packet.tcp { check(tcp.payloadRange.lowerBound <= packet.count, "TCP header inside the packet") }
    _ = packet.icmp
    _ = packet.icmpv4Message
    _ = packet.icmpv6Message
    _ = try? packet.sourceKey
    _ = try? packet.destinationKey
    if let control = packet.p2pControl { check(control.bodyRange.upperBound == packet.count, "control body in packet") }
    check(!packet.description.isEmpty, "description")
}

func exerciseIcmpError(_ packet: IpPacket, input: FuzzInput) {
    guard let error = try? packet.icmpError() else { return }
    _ = error.description
    _ = error.isProhibited
    _ = error.isNetworkUnreachable
    var translated = packet
    translated.computeChecksums()
    let otherVersion: IpVersion = packet.version == .v4 ? .v6 : .v4
    do {
        try translated.translateFailedPacket(destination: input.address(otherVersion, selector: 0), sourceKeyValue: 1)
        check(false, "translating an ICMP error across families must fail")
    } catch {}
    let newDestination = input.address(packet.version, selector: 3)
    do {
        try translated.translateFailedPacket(destination: newDestination, sourceKeyValue: 4242)
    } catch {
        check(false, "translating a parsed ICMP error succeeds: \(error)")
    }
    check(translated.hasValidChecksums, "translation keeps the outer checksums valid")
    let failed = try? translated.icmpError()?.failedPacket
    check(failed?.destination == newDestination, "translated destination reads back")
    check(failed?.sourceKey.value == 4242, "translated source key reads back")
}

func apply(_ mutation: Mutation, to packet: inout IpPacket, input: FuzzInput) {
    let address = input.address(packet.version, selector: mutation.selector)
    let keyBefore = try? packet.sourceKey
    let destinationKeyBefore = try? packet.destinationKey
    switch mutation.operation % 10 {
    case 0:
        try? packet.setSource(address)
        check(packet.source == address, "source reads back")
    case 1:
        try? packet.setDestination(address)
        check(packet.destination == address, "destination reads back")
    case 2:
        packet.setSourceKey(mutation.value)
        checkKey(try? packet.sourceKey, before: keyBefore, set: mutation.value)
    case 3:
        packet.setDestinationKey(mutation.value)
        checkKey(try? packet.destinationKey, before: destinationKeyBefore, set: mutation.value)
    case 4:
        try? packet.translateDestination(address, sourceKey: mutation.value)
        check(packet.destination == address, "translated destination reads back")
        checkKey(try? packet.sourceKey, before: keyBefore, set: mutation.value)
    case 5:
        try? packet.translateSource(address, destinationKey: mutation.value)
        check(packet.source == address, "translated source reads back")
        checkKey(try? packet.destinationKey, before: destinationKeyBefore, set: mutation.value)
    case 6:
        let before = packet.ecn
        let outer = Ecn(rawValue: UInt8(mutation.value & 0b11)) ?? .notEct
        packet.applyEcnFromTransport(outer)
        let expected: Ecn = (outer == .ce && (before == .ect0 || before == .ect1)) ? .ce : before
        check(packet.ecn == expected, "ECN merge follows RFC 6040")
    case 7:
        let ecn = Ecn(rawValue: UInt8(mutation.value & 0b11)) ?? .notEct
        packet.setEcn(ecn)
        check(packet.ecn == ecn, "ECN reads back")
    case 8:
        packet.setTtl(UInt8(truncatingIfNeeded: mutation.value))
        check(packet.ttl == UInt8(truncatingIfNeeded: mutation.value), "TTL reads back")
    default:
        let before = packet.bytes
        let wrongFamily = input.address(packet.version == .v4 ? .v6 : .v4, selector: mutation.selector)
        do {
            try packet.setSource(wrongFamily)
            check(false, "an address of the other family is refused")
        } catch {}
        check(packet.bytes == before, "a refused mutation changes nothing")
    }
}

/// Ports and echo identifiers take the new value; packets without one (non-echo ICMP, other protocols)
/// stay as they were.
func checkKey(_ after: TransportKey?, before: TransportKey?, set value: UInt16) {
    guard let before else {
        check(after == nil, "a packet without a key does not grow one")
        return
    }
    check(after?.value == value, "key \(before) was set to \(value), reads \(String(describing: after))")
}

func checkUnreachableErrors(for original: IpPacket) {
    for prohibited in [true, false] {
        let built = prohibited
            ? try? IpPacket.icmpDestinationUnreachableProhibited(for: original)
            : try? IpPacket.icmpDestinationUnreachableNetwork(for: original)
        guard let error = built else {
            check(false, "an unreachable error can be built for every valid packet")
            return
        }
        check(error.source == original.destination && error.destination == original.source, "addresses swapped")
        check(error.hasValidChecksums, "unreachable error has valid checksums")
        let quotedHeaders = original.transportOffset + 8 <= min(original.count, IpPacket.maxIcmpv6QuotedBytes)
        guard original.isUdp || original.isTcp, quotedHeaders else { continue }
        let parsed = try? error.icmpError()
        check(parsed?.failedPacket.source == original.source, "quoted source")
        check(parsed?.failedPacket.destination == original.destination, "quoted destination")
        check(parsed?.failedPacket.sourceKey == (try? original.sourceKey), "quoted source key")
        check(parsed?.failedPacket.destinationKey == (try? original.destinationKey), "quoted destination key")
        check(parsed?.isProhibited == prohibited && parsed?.isNetworkUnreachable == !prohibited, "error code")
    }
}
