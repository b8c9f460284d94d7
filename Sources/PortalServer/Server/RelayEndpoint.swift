import NIOHTTP1
import PhoenixChannel
import PortalMessages
import WSCore

/// `/relay/websocket` (Firezone's `PortalAPI.Relay.Socket` and `Channel`): a relay token and addresses checked
/// at the upgrade, then the relay joins topic `relay` with its stamp secret and gets `init`. Anything else it
/// sends on the topic is answered `unknown_message`.
struct RelayEndpoint: PortalEndpoint {
    let state: PortalState

    func accept(uri: String, headers: HTTPHeaders) async throws(ConnectRequest.Refusal) -> WebSocketSession {
        let tokens = await state.config.relayTokens
        let request = try RelayConnectRequest(query: QueryString.parse(uri), authorization: headers.first(name: "X-Authorization"),
                                              userAgent: headers.first(name: "User-Agent"), tokenIsKnown: { tokens.contains($0) })
        return { inbound, outbound in try await run(inbound: inbound, outbound: outbound, request: request) }
    }

    private func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: RelayConnectRequest) async throws {
        try await Outbox.serve(inbound, outbound, state: state) { text, outbox in
            guard let frame = try? PhoenixInbound<RelayEgress>(decoding: text) else { return await state.countMalformedFrame() }
            await handle(frame, request: request, outbox: outbox)
        }
    }

    private func handle(_ frame: PhoenixInbound<RelayEgress>, request: RelayConnectRequest, outbox: Outbox) async {
        switch (frame.topic, frame.payload) {
        case ("phoenix", .success(.heartbeat)):
            outbox.send(frame.reply(status: "ok"))
        case ("relay", .success(.join(let join))):
            outbox.send(frame.reply(status: "ok"))
            await state.relayJoined(request, join: join, outbox: outbox)
        case ("relay", .success(.leave)):
            outbox.send(frame.reply(status: "ok"))
            await state.left(outbox: outbox)
        case ("relay", .failure(let error)):
            if case .malformed? = error.underlying as? PortalMessageError { await state.countMalformedFrame() }
            outbox.send(frame.reply(status: "error", response: #"{"reason":"unknown_message"}"#))
        default:
            outbox.send(frame.reply(status: "error", response: #"{"reason":"unmatched topic"}"#))
        }
    }
}
