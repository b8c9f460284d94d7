import FlowBroker
import PhoenixChannel
import PortalMessages
import SansIO

/// Frames queued for one WebSocket connection, written in order by that connection's writer task.
public final class Outbox: Sendable {
    public let frames: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    public init() {
        (frames, continuation) = AsyncStream.makeStream(of: String.self)
    }

    public func send(_ text: String) {
        _ = continuation.yield(text)
    }

    public func push(topic: String, event: String, payload: String) {
        send(PhoenixServerFrame.push(topic: topic, event: event, payload: payload))
    }

    /// Ends the connection after what is queued.
    public func finish() {
        continuation.finish()
    }
}

/// A connected client, as the portal knows it.
struct ClientSession: Sendable {
    var id: ClientId
    var token: String
    var actor: String
    var device: DeviceRecord
    var publicKey: PublicKey
    var userAgent: ConnectRequest.UserAgentParts
    var outbox: Outbox
    /// How pushes are named and keyed for this connection.
    var view: PortalView
    /// The resources last sent, to diff against on reload.
    var sentResources: [ResourceId: ClientResource] = [:]

    /// The resources the configuration grants, as this client's version is shown them.
    func resources(in config: PortalConfig) -> [ClientResource] {
        let granted = config.resources(for: actor).map { $0.clientView(sites: config.sites) }
        guard let version = VersionGates.Version(userAgent.version) else { return granted }
        return granted.compactMap { VersionGates.adapt($0, for: version) }
    }
}

/// A connected gateway.
struct GatewaySession: Sendable {
    var id: GatewayId
    var token: String
    var site: SiteId
    var device: DeviceRecord
    var publicKey: PublicKey
    var outbox: Outbox
    var view: PortalView
}
