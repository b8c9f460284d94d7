import Dns
import IpPacket
import P2pControl

/// The Client's side of DNS-resource NAT (spec `tunnel-dns.md` §4.8, HEAD keying): per (Gateway, domain,
/// resource) it sends AssignedIps, buffers the first packets until the Gateway answers DomainStatus, and
/// re-sends only when a packet or DNS answer arrives at least 2 s later; there is no timer.
public struct ClientDnsResourceNat<GatewayId: Hashable & Sendable>: Sendable {
    public struct Key: Hashable, Sendable {
        public var gateway: GatewayId
        public var domain: DnsName
        public var resource: ResourceId

        public init(gateway: GatewayId, domain: DnsName, resource: ResourceId) {
            self.gateway = gateway
            self.domain = domain
            self.resource = resource
        }
    }

    public enum State: Hashable, Sendable {
        /// AssignedIps sent, no answer yet; packets are buffered while `shouldBuffer`.
        case pending(sentAt: Instant, shouldBuffer: Bool)
        /// A fresh DNS answer asked for a refresh; AssignedIps goes out with the next update.
        case recreating(shouldBuffer: Bool)
        /// The Gateway answered Active.
        case confirmed
        /// The Gateway answered Inactive (or a status we do not know).
        case failed
    }

    /// What to do with an outgoing packet for a domain.
    public struct Outgoing: Sendable {
        /// Send the packet on (false: it was buffered).
        public var passThrough: Bool
        /// An AssignedIps control packet to send to the Gateway first.
        public var assignedIps: IpPacket?
    }

    public static var resendInterval: Duration { .seconds(2) }
    public static var bufferCapacity: Int { 32 }

    private struct Entry: Sendable {
        var assignedIps: IpPacket
        var state: State
        var buffer = UniquePacketRing(capacity: ClientDnsResourceNat.bufferCapacity)
    }

    private var entries: [Key: Entry] = [:]

    public init() {}

    /// The state of one entry; `nil` when no NAT was requested.
    public func state(of key: Key) -> State? {
        entries[key]?.state
    }

    /// Requests (or keeps requesting) NAT for a resolved domain; `packets` are the ones that triggered it and
    /// wait for the answer. Returns the AssignedIps packet to send, if one is due.
    public mutating func update(_ key: Key, proxyIps: [IpAddress], packets: [IpPacket] = [], now: Instant) throws(P2pControlError) -> IpPacket? {
        guard var entry = entries[key] else {
            let assigned = try P2pControlEvent.assignedIps(AssignedIps(resource: key.resource, domain: key.domain, proxyIps: proxyIps)).packet()
            var entry = Entry(assignedIps: assigned, state: .pending(sentAt: now, shouldBuffer: true))
            packets.forEach { entry.buffer.append($0) }
            entries[key] = entry
            return assigned
        }
        defer { entries[key] = entry }
        switch entry.state {
        case .pending(let sentAt, let shouldBuffer):
            packets.forEach { entry.buffer.append($0) }
            guard now - sentAt >= Self.resendInterval else { return nil }
            entry.state = .pending(sentAt: now, shouldBuffer: shouldBuffer)
            return entry.assignedIps
        case .recreating(let shouldBuffer):
            entry.state = .pending(sentAt: now, shouldBuffer: shouldBuffer)
            packets.forEach { entry.buffer.append($0) }
            return entry.assignedIps
        case .confirmed, .failed:
            return nil
        }
    }

    /// A local DNS answer for `domain`: every Gateway's entry refreshes on its next update. A confirmed entry
    /// keeps passing traffic meanwhile; a failed one buffers again.
    public mutating func recreate(domain: DnsName) {
        for (key, entry) in entries where key.domain == domain {
            switch entry.state {
            case .confirmed: entries[key]?.state = .recreating(shouldBuffer: false)
            case .failed: entries[key]?.state = .recreating(shouldBuffer: true)
            case .pending, .recreating: break
            }
        }
    }

    /// An outgoing packet to one of the domain's proxy IPs.
    public mutating func outgoing(_ packet: IpPacket, for key: Key, now: Instant) -> Outgoing {
        guard var entry = entries[key], case .pending(let sentAt, let shouldBuffer) = entry.state else {
            return Outgoing(passThrough: true, assignedIps: nil)
        }
        var resend: IpPacket?
        if now - sentAt >= Self.resendInterval {
            entry.state = .pending(sentAt: now, shouldBuffer: shouldBuffer)
            resend = entry.assignedIps
        }
        if shouldBuffer { entry.buffer.append(packet) }
        entries[key] = entry
        return Outgoing(passThrough: !shouldBuffer, assignedIps: resend)
    }

    /// The Gateway's answer. Active releases the buffered packets (returned, oldest first); anything else
    /// discards them. A status for an unknown key is ignored.
    public mutating func domainStatus(_ update: DomainStatusUpdate, from gateway: GatewayId) -> [IpPacket] {
        let key = Key(gateway: gateway, domain: update.domain, resource: update.resource)
        guard var entry = entries[key] else { return [] }
        let released = entry.buffer.drain()
        entry.state = update.status == .active ? .confirmed : .failed
        entries[key] = entry
        return update.status == .active ? released : []
    }

    /// How many buffered packets were overwritten because a buffer was full.
    public var droppedCount: Int {
        entries.values.reduce(0) { $0 + $1.buffer.droppedCount }
    }

    /// The Gateway's connection is gone.
    public mutating func removeGateway(_ gateway: GatewayId) {
        entries = entries.filter { $0.key.gateway != gateway }
    }

    /// The resource was disabled.
    public mutating func removeResource(_ resource: ResourceId) {
        entries = entries.filter { $0.key.resource != resource }
    }

    /// Network change or roaming: start over.
    public mutating func reset() {
        entries.removeAll()
    }
}
