// libFuzzer harness for portal input: a WebSocket text frame as the portal (or, for the dev portal, a client
// gateway or relay) might send it. Decoding never crashes or hangs; the server-side decoding echoes refs in replies; a
// frame that decodes re-encodes into text that decodes equal; a role message decoded inside its frame (one
// parse) equals the one decoded from the payload text alone; and it re-encodes into a payload that decodes
// equal, for all four directions. Build and run with `scripts/fuzz PortalMessage [seconds]`.
import PhoenixChannel
import PortalMessages
import SansIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPortalMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size <= 65_536 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // The dev portal's view, as its sessions decode: a reply echoes the ref and join_ref and is itself a frame.
    echoesRefs(PhoenixServerPayload<ClientEgress>.self, text)
    echoesRefs(PhoenixServerPayload<GatewayEgress>.self, text)
    echoesRefs(RelayEgress.self, text)
    // The client's and gateway's view: their channels decode pushes straight into their messages.
    receive(ClientIngress.self, text)
    receive(GatewayIngress.self, text)
    receive(RelayIngress.self, text)
    if case .success(.join(let join))? = try? PhoenixInbound<RelayEgress>(decoding: text).payload {
        let again = try? PhoenixInbound<RelayEgress>(decoding: PhoenixFrame(topic: "relay", event: "phx_join", payload: join.json, ref: 1).encoded())
        precondition(again.map { (try? $0.payload.get()) == .join(join) } == true, "a relay's join round trips")
    }
    guard let frame = try? PhoenixFrame(decoding: text) else { return 0 }
    guard let again = try? PhoenixFrame(decoding: frame.encoded()) else { fatalError("our encoding of a decoded frame does not decode") }
    precondition(again == frame, "re-encoded frame decodes equal")

    agrees(text, frame) { try ClientIngress(event: $0, payload: $1) }
    agrees(text, frame) { try ClientEgress(event: $0, payload: $1) }
    agrees(text, frame) { try GatewayIngress(event: $0, payload: $1) }
    agrees(text, frame) { try GatewayEgress(event: $0, payload: $1) }
    for view in [PortalView.v1, .v2, PortalView(api: .v2, sitesKey: false)] {
        // v2's names require the flow-log ingest token; a v1 message without one has no v2 rendering.
        if let message = try? ClientIngress(event: frame.event, payload: frame.payload), view.api == .v1 || message.rendersOnV2 {
            precondition((try? ClientIngress(event: message.event(in: view), payload: message.payload(in: view))) == message,
                         "client ingress round trip")
        }
        if let message = try? GatewayIngress(event: frame.event, payload: frame.payload), view.api == .v1 || message.rendersOnV2 {
            precondition((try? GatewayIngress(event: message.event(in: view), payload: message.payload(in: view))) == message,
                         "gateway ingress round trip")
        }
    }
    if let message = try? ClientEgress(event: frame.event, payload: frame.payload) { roundTrips(message, ClientEgress.init) }
    if let message = try? GatewayEgress(event: frame.event, payload: frame.payload) { roundTrips(message, GatewayEgress.init) }
    return 0
}

extension ClientIngress {
    var rendersOnV2: Bool {
        if case .flowCreated(let flow) = self { flow.flowLogsIngestToken != nil } else { true }
    }
}

extension GatewayIngress {
    var rendersOnV2: Bool {
        if case .authorizeFlow(let flow) = self { flow.flowLogsIngestToken != nil } else { true }
    }
}

/// On v1 a message is one frame that decodes equal, or none (v2-only messages); on v2 every frame decodes, and a
/// broadcast split per peer comes back as the same candidates for each.
func roundTrips<Message: PortalEgress & Equatable>(_ message: Message, _ decode: (String, String) throws -> Message) {
    let v1 = message.frames(for: .v1)
    precondition(v1.count <= 1, "v1: at most one frame")
    if let frame = v1.first { precondition((try? decode(frame.event, frame.payload)) == message, "egress round trip on v1") }
    for frame in message.frames(for: .v2) {
        precondition((try? decode(frame.event, frame.payload)) != nil, "egress frame on v2 decodes")
    }
}

/// A message decoded inside its frame equals the one decoded from the frame's payload text.
func agrees<Message: PhoenixPayload & Equatable>(_ text: String, _ frame: PhoenixFrame, _ fromText: (String, String) throws -> Message) {
    guard case .success(let inFrame)? = try? PhoenixInbound<Message>(decoding: text).payload else { return }
    guard let alone = try? fromText(frame.event, frame.payload) else {
        fatalError("\(Message.self) decoded inside its frame but not from its payload text")
    }
    precondition(alone == inFrame, "\(Message.self): the one-pass decode and the payload-text decode agree")
}

/// A frame the portal's session decodes gets a reply that echoes its ref, join_ref and topic and decodes itself.
func echoesRefs<Payload: PhoenixPayload>(_ type: Payload.Type, _ text: String) {
    guard let frame = try? PhoenixInbound<Payload>(decoding: text) else { return }
    guard let reply = try? PhoenixInbound<PhoenixRawPayload>(decoding: frame.reply(status: "ok")) else {
        fatalError("a reply does not decode")
    }
    precondition(reply.ref == frame.ref && reply.joinRef == frame.joinRef && reply.topic == frame.topic, "a reply echoes the refs")
}

/// A joined channel of the role takes the frame: it becomes at most one output, and never stops the channel
/// unless it is the portal's `disconnect` with `token_expired`.
func receive<Message: PhoenixPayload>(_ type: Message.Type, _ text: String) {
    let now = Instant(nanoseconds: 1_000_000_000)
    var channel = PhoenixChannelCore<Message>(topic: "client", maxElapsed: nil)
    channel.connect()
    channel.connectionOpened(now: now)
    while channel.pollOutput(now: now) != nil {}
    channel.received(#"{"topic":"client","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":0}"#, now: now, unit: 0.5)
    while channel.pollOutput(now: now) != nil {}
    let malformedBefore = channel.malformedFrameCount
    channel.received(text, now: now, unit: 0.5)
    var outputs = 0
    while channel.pollOutput(now: now) != nil { outputs += 1 }
    precondition(outputs <= 2 && channel.malformedFrameCount - malformedBefore <= 1, "one frame, one outcome (an error reply may add a rejoin)")
}
