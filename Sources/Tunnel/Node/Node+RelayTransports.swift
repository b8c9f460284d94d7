import SansIO
import Stun
import Turn

/// A relay UDP could not reach: what the portal gave (over UDP), and the BINDING over UDP that finds out whether UDP
/// works again.
struct RelayFallback {
    var original: RelayDescription
    var probe: TransactionId?
    var nextProbe: Instant
}

extension Node {
    /// How often a relay reached over a stream is asked over UDP whether UDP works again.
    static var udpProbeInterval: Duration { .seconds(20) }
    /// Where TURN over TLS listens (RFC 8656 §3 allows any; 443 passes the firewalls that pass HTTPS).
    static var tlsPort: UInt16 { 443 }

    /// The relays reached over TCP or TLS, by the address the IO layer connects to: open a stream to each, carry
    /// the transmits tagged with it and the datagrams for that address on it, and hand what it brings to
    /// ``decapsulate(local:from:buffer:count:now:)`` as if from that address. Changes bump
    /// ``relayStreamsGeneration``.
    public var relayStreams: [SocketAddress: RelayTransport] {
        var streams: [SocketAddress: RelayTransport] = [:]
        for (_, allocation) in allocations.entries where allocation.server.transport.isStream {
            for address in allocation.server.addresses { streams[address] = allocation.server.transport }
        }
        return streams
    }

    /// An allocation over UDP that got no answer at all moves to TCP on the same address, one over TCP to TLS on
    /// port 443 (the certificate checked for the relay's address); true when it moved. The order is the issue's:
    /// UDP, then TCP, then TLS.
    func fallBack(id: String, from allocation: TurnAllocation, now: Instant) -> Bool {
        guard allocation.failureReason == .noResponse, let address = allocation.server.ipv4 ?? allocation.server.ipv6 else { return false }
        let original = relayFallbacks[id]?.original ?? RelayDescription(id: id, server: allocation.server, credentials: allocation.credentials)
        let next: RelayServer
        switch allocation.server.transport {
        case .udp:
            next = Self.streamServer(address, transport: .tcp)
        case .tcp:
            next = Self.streamServer(SocketAddress(ip: address.ip, port: Self.tlsPort), transport: .tls(serverName: "\(address.ip)"))
        case .tls:
            return false
        }
        allocations.upsert(id: id, server: next, credentials: allocation.credentials, now: now, random: random.split())
        relayFallbacks[id] = RelayFallback(original: original, probe: nil, nextProbe: now + Self.udpProbeInterval)
        report(.info, "Relay unreachable over \(allocation.server.transport); trying \(next.transport)",
               ["rid": id, "address": next.addresses.map(\.description).joined(separator: ", ")])
        updateStreamRelays()
        return true
    }

    /// The portal sent a relay again: one on a stream stays there (with the new credentials) while UDP still fails.
    func keepOnStream(_ relay: RelayDescription, now: Instant) -> Bool {
        guard var fallback = relayFallbacks[relay.id], fallback.original.server == relay.server,
              let current = allocations.allocation(id: relay.id)
        else {
            relayFallbacks[relay.id] = nil
            return false
        }
        fallback.original = relay
        relayFallbacks[relay.id] = fallback
        allocations.upsert(id: relay.id, server: current.server, credentials: relay.credentials, now: now, random: random.split())
        return true
    }

    /// Sends each relay on a stream its BINDING over UDP when due.
    func probeUdp(now: Instant) {
        for (id, fallback) in relayFallbacks where fallback.nextProbe <= now {
            guard let destination = fallback.original.server.ipv4 ?? fallback.original.server.ipv6 else { continue }
            let transactionId = TransactionId(bytes: (UInt32(truncatingIfNeeded: random.next()), UInt32(truncatingIfNeeded: random.next()),
                                                      UInt32(truncatingIfNeeded: random.next())))
            relayFallbacks[id]?.probe = transactionId
            relayFallbacks[id]?.nextProbe = now + Self.udpProbeInterval
            let binding = StunMessage(class: .request, method: .binding, transactionId: transactionId).encode()
            udpProbes.append(NodeTransmit(source: nil, destination: destination, payload: binding))
        }
    }

    var nextUdpProbe: Instant? { relayFallbacks.values.map(\.nextProbe).min() }

    /// A BINDING answer over UDP to a probe: that relay moves back to UDP (its stream's candidates are withdrawn,
    /// the new ones signalled as they come). True when the datagram was such an answer.
    func handleUdpProbeAnswer(_ datagram: UnsafeRawBufferPointer, from source: SocketAddress, now: Instant) -> Bool {
        guard !relayFallbacks.isEmpty, let message = try? StunMessage(decoding: datagram), message.messageClass == .successResponse,
              let (id, fallback) = relayFallbacks.first(where: { $0.value.probe == message.transactionId }),
              fallback.original.server.addresses.contains(source)
        else { return false }
        relayFallbacks[id] = nil
        let previous = allocations.allocation(id: id)
        allocations.upsert(id: id, server: fallback.original.server, credentials: previous?.credentials ?? fallback.original.credentials,
                           now: now, random: random.split())
        if let previous { invalidateRelayCandidates(of: previous) }
        report(.info, "Relay reachable over UDP again; moving back from \(previous?.server.transport.description ?? "a stream")",
               ["rid": id, "address": "\(source)"])
        updateStreamRelays()
        return true
    }

    func updateStreamRelays() {
        let streams = relayStreams
        guard streams != streamRelays else { return }
        streamRelays = streams
        relayStreamsGeneration += 1
    }

    private static func streamServer(_ address: SocketAddress, transport: RelayTransport) -> RelayServer {
        address.ip.version == .v4 ? RelayServer(ipv4: address, transport: transport) : RelayServer(ipv6: address, transport: transport)
    }
}
