import NIOHTTP1
import PhoenixChannel
import PortalMessages
import SansIO
import WSCore

/// A connection that passed the upgrade checks.
struct AcceptedConnection: Sendable {
    var request: ConnectRequest
    var device: DeviceRecord
}

/// One role's WebSocket endpoint of one API generation: the upgrade checks, then a Phoenix V1 session against
/// ``PortalState``. A message named for the other generation is answered `unknown_message`, as the newest
/// portal answers it.
struct PortalSession: PortalEndpoint {
    let role: ConnectRequest.Role
    let api: PortalApi
    let state: PortalState
    let store: DeviceStore

    /// The real portal's checks, in its order: token (401), then device fields and User-Agent (400).
    func accept(uri: String, headers: HTTPHeaders) async throws(ConnectRequest.Refusal) -> WebSocketSession {
        let accepted = try await check(uri: uri, headers: headers)
        return { inbound, outbound in try await run(inbound: inbound, outbound: outbound, accepted: accepted) }
    }

    private func check(uri: String, headers: HTTPHeaders) async throws(ConnectRequest.Refusal) -> AcceptedConnection {
        let config = await state.config
        let role = self.role
        let request = try ConnectRequest(
            role: role, query: QueryString.parse(uri), authorization: headers.first(name: "X-Authorization"),
            userAgent: headers.first(name: "User-Agent"),
            tokenIsKnown: { token in
                role == .client ? config.actor(forClientToken: token) != nil : config.site(forGatewayToken: token) != nil
            })
        do {
            let device = try store.device(kind: role == .client ? .client : .gateway, externalId: request.externalId)
            return AcceptedConnection(request: request, device: device)
        } catch {
            throw ConnectRequest.Refusal(status: 500, code: "unhandled_connect_error", detail: "An unexpected error occurred.")
        }
    }

    /// Reads frames until the connection ends; pushes go out through the session's ``Outbox`` in order.
    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, accepted: AcceptedConnection) async throws {
        var joined = false
        try await Outbox.serve(inbound, outbound, state: state) { text, outbox in
            switch role {
            case .client:
                guard let frame = try? PhoenixInbound<PhoenixServerPayload<ClientEgress>>(decoding: text) else {
                    return await state.countMalformedFrame()
                }
                joined = await handle(frame, joined: joined, accepted: accepted, outbox: outbox) { [api] message in
                    guard ClientEgress.isSent(as: frame.event, on: api) else { return .error(reason: "unknown_message") }
                    return await state.handleClientMessage(from: outbox, message: message)
                }
            case .gateway:
                guard let frame = try? PhoenixInbound<PhoenixServerPayload<GatewayEgress>>(decoding: text) else {
                    return await state.countMalformedFrame()
                }
                joined = await handle(frame, joined: joined, accepted: accepted, outbox: outbox) { [api] message in
                    guard GatewayEgress.isSent(as: frame.event, on: api) else { return .error(reason: "unknown_message") }
                    return await state.handleGatewayMessage(from: outbox, message: message)
                }
            }
        }
    }

    /// One frame, decoded once; returns whether the topic is joined afterwards. `deliver` hands a role message
    /// (or why it did not decode) to the portal's state.
    private func handle<Message>(
        _ frame: PhoenixInbound<PhoenixServerPayload<Message>>, joined: Bool, accepted: AcceptedConnection, outbox: Outbox,
        deliver: (Result<Message, PhoenixPayloadError>) async -> PortalState.Reply
    ) async -> Bool {
        let topic = role.rawValue
        switch (frame.topic, frame.payload) {
        case ("phoenix", .success(.heartbeat)):
            outbox.send(frame.reply(status: "ok"))
            return joined
        case (topic, .success(.join)):
            outbox.send(frame.reply(status: "ok"))
            if role == .client {
                await state.clientJoined(accepted.request, device: accepted.device, api: api, outbox: outbox)
            } else {
                await state.gatewayJoined(accepted.request, device: accepted.device, api: api, outbox: outbox)
            }
            return true
        case (topic, .success(.leave)):
            outbox.send(frame.reply(status: "ok"))
            await state.left(outbox: outbox)
            return false
        case (topic, _) where joined:
            let message: Result<Message, PhoenixPayloadError>
            switch frame.payload {
            case .success(.message(let decoded)): message = .success(decoded)
            case .success: message = .failure(PhoenixPayloadError(event: frame.event, reason: "not a role message"))
            case .failure(let error): message = .failure(error)
            }
            switch await deliver(message) {
            case .none: break
            case .ok(let response): outbox.send(frame.reply(status: "ok", response: response))
            case .error(let reason): outbox.send(frame.reply(status: "error", response: "{\"reason\":\(JsonText.string(reason))}"))
            }
            return true
        default:
            outbox.send(frame.reply(status: "error", response: #"{"reason":"unmatched topic"}"#))
            return joined
        }
    }
}
