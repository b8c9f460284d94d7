import IpPacket
import PortalMessages
import SansIO

/// What the portal said about a flow's client and resource, for its log record (Firezone's field names in
/// brackets: `client_version`, `device_*`, `auth_provider_id`, `actor_*`, `resource_name`, `resource_address`,
/// `inner_domain`).
public struct FlowContext: Hashable, Sendable {
    public var clientVersion: String?
    public var deviceOsName: String?
    public var deviceOsVersion: String?
    public var deviceSerial: String?
    public var deviceUuid: String?
    public var deviceIdentifierForVendor: String?
    public var deviceFirebaseInstallationId: String?
    public var authProviderId: String?
    public var actorName: String?
    public var actorId: String?
    public var actorEmail: String?
    public var resourceName: String?
    public var resourceAddress: String?
    /// The domain a DNS resource's proxy IP stands for.
    public var innerDomain: String?

    public init() {}

    /// The client's and its actor's part, from `authorize_flow`.
    init(client: FlowClient, subject: Subject?) {
        clientVersion = client.version
        deviceOsName = client.deviceOsName
        deviceOsVersion = client.deviceOsVersion
        deviceSerial = client.deviceSerial
        deviceUuid = client.deviceUuid
        deviceIdentifierForVendor = client.identifierForVendor
        deviceFirebaseInstallationId = client.firebaseInstallationId
        authProviderId = subject?.authProviderId
        actorName = subject?.actorName
        actorId = subject?.actorId
        actorEmail = subject?.actorEmail
    }
}

/// A finished TCP or UDP flow through the gateway, for flow logs (spec `portal-phoenix.md` §7.3,
/// `tunnel-dns.md` §6 "flow-tracker"). Counters are from the client's view: tx is what it sent.
public struct FlowRecord: Hashable, Sendable {
    public enum Transport: String, Hashable, Sendable { case tcp, udp }

    public var transport: Transport
    public var client: ClientId
    /// The resource whose filter let the first packet through; `nil` for the Internet resource.
    public var resource: ResourceId?
    /// The client's tunnel address and port, and the destination it addressed (a proxy IP for DNS resources).
    public var innerSource: SocketAddress
    public var innerDestination: SocketAddress
    /// The client's underlay address and the gateway's local one, of the flow's first packet.
    public var outerSource: SocketAddress
    public var outerDestination: SocketAddress
    /// Unix time in nanoseconds.
    public var start: Int64
    public var end: Int64
    public var lastPacket: Int64
    public var txPackets = 0
    public var rxPackets = 0
    public var txBytes = 0
    public var rxBytes = 0
    public var context = FlowContext()
}

/// Tracks the gateway's TCP and UDP flows while flow logs are on. A flow ends after 2 minutes without packets,
/// when both sides have sent FIN, or on RST; a SYN after other traffic starts a new one. Observability only:
/// nothing here changes what is forwarded.
struct FlowTracker {
    static let idleTimeout: Duration = .seconds(120)

    private struct Key: Hashable {
        var client: ClientId
        var transport: FlowRecord.Transport
        var source: SocketAddress
        var destination: SocketAddress
    }

    private struct Flow {
        var record: FlowRecord
        var lastSeen: Instant
        var clientFinished = false
        var resourceFinished = false
    }

    private var flows: [Key: Flow] = [:]
    private(set) var finished: [FlowRecord] = []

    var isEmpty: Bool { flows.isEmpty }

    /// A packet from the client, before NAT; `context` is asked for only when the packet starts a flow.
    mutating func outbound(_ packet: IpPacket, client: ClientId, resource: ResourceId?,
                           outer: (source: SocketAddress, destination: SocketAddress), now: Instant, unixNanoseconds: Int64,
                           context: () -> FlowContext = { FlowContext() }) {
        guard let (transport, source, destination, flags) = Self.tuple(of: packet) else { return }
        let key = Key(client: client, transport: transport, source: source, destination: destination)
        if let flags, flags.contains(.syn), !flags.contains(.ack), let flow = flows[key], flow.record.txPackets > 0 {
            finish(key, unixNanoseconds: unixNanoseconds)
        }
        // A lone ACK, FIN or RST (the last ACK of a closed connection) starts no flow of its own.
        if let flags, flows[key] == nil, !flags.contains(.syn), packet.layer4PayloadCount == 0 { return }
        if flows[key] == nil {
            let record = FlowRecord(transport: transport, client: client, resource: resource, innerSource: source,
                                    innerDestination: destination, outerSource: outer.source,
                                    outerDestination: outer.destination, start: unixNanoseconds, end: unixNanoseconds,
                                    lastPacket: unixNanoseconds, context: context())
            flows[key] = Flow(record: record, lastSeen: now)
        }
        flows[key]!.record.txPackets += 1
        flows[key]!.record.txBytes += packet.count
        seen(key, flags: flags, fromClient: true, now: now, unixNanoseconds: unixNanoseconds)
    }

    /// A packet to the client, after reverse NAT; counted only for a flow the client started.
    mutating func inbound(_ packet: IpPacket, client: ClientId, now: Instant, unixNanoseconds: Int64) {
        guard let (transport, source, destination, flags) = Self.tuple(of: packet) else { return }
        let key = Key(client: client, transport: transport, source: destination, destination: source)
        guard flows[key] != nil else { return }
        flows[key]!.record.rxPackets += 1
        flows[key]!.record.rxBytes += packet.count
        seen(key, flags: flags, fromClient: false, now: now, unixNanoseconds: unixNanoseconds)
    }

    /// Ends the flows idle for ``idleTimeout``.
    mutating func expire(now: Instant, unixNanoseconds: Int64) {
        for (key, flow) in flows where now - flow.lastSeen >= Self.idleTimeout {
            finish(key, unixNanoseconds: unixNanoseconds)
        }
    }

    /// Ends every flow (shutdown).
    mutating func finishAll(unixNanoseconds: Int64) {
        for key in flows.keys { finish(key, unixNanoseconds: unixNanoseconds) }
    }

    mutating func pollFinished() -> FlowRecord? {
        finished.isEmpty ? nil : finished.removeFirst()
    }

    private mutating func seen(_ key: Key, flags: TcpFlags?, fromClient: Bool, now: Instant, unixNanoseconds: Int64) {
        flows[key]!.lastSeen = now
        flows[key]!.record.lastPacket = unixNanoseconds
        guard let flags else { return }
        if flags.contains(.fin) {
            if fromClient { flows[key]!.clientFinished = true } else { flows[key]!.resourceFinished = true }
        }
        let flow = flows[key]!
        if flags.contains(.rst) || (flow.clientFinished && flow.resourceFinished) {
            finish(key, unixNanoseconds: unixNanoseconds)
        }
    }

    private mutating func finish(_ key: Key, unixNanoseconds: Int64) {
        guard var flow = flows.removeValue(forKey: key) else { return }
        flow.record.end = unixNanoseconds
        finished.append(flow.record)
    }

    private static func tuple(of packet: IpPacket)
        -> (FlowRecord.Transport, SocketAddress, SocketAddress, TcpFlags?)?
    {
        if let tcp = packet.tcp {
            return (.tcp, SocketAddress(ip: packet.source, port: tcp.sourcePort),
                    SocketAddress(ip: packet.destination, port: tcp.destinationPort), tcp.flags)
        }
        if let udp = packet.udp {
            return (.udp, SocketAddress(ip: packet.source, port: udp.sourcePort),
                    SocketAddress(ip: packet.destination, port: udp.destinationPort), nil)
        }
        return nil
    }
}
