import FlowBroker
import PhoenixChannel
import PortalMessages
import SansIO
import WSCore

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

    /// Runs one accepted connection: each text frame read goes to `handle` with the outbox for its answers (a
    /// binary frame is counted as malformed), queued frames are written in order, and when the connection ends
    /// the state forgets whoever it carried.
    static func serve(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, state: PortalState,
                      handle: (String, Outbox) async -> Void) async throws {
        let outbox = Outbox()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await text in outbox.frames { try await outbound.write(.text(text)) }
                try? await outbound.close(.normalClosure, reason: nil)
            }
            for try await message in inbound.messages(maxSize: PortalChildChannel.maxFrameSize) {
                guard case .text(let text) = message else {
                    await state.countMalformedFrame()
                    continue
                }
                await handle(text, outbox)
            }
            outbox.finish()
            await state.left(outbox: outbox)
            group.cancelAll()
        }
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
