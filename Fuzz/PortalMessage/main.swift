// libFuzzer harness for portal input: a WebSocket text frame as the portal (or, for the dev portal, a client
// or gateway) might send it. Decoding never crashes or hangs; the server-side decoding echoes refs in replies; a
// frame that decodes re-encodes into text that decodes equal; a role message decoded inside its frame (one
// parse) equals the one decoded from the payload text alone; and it re-encodes into a payload that decodes
// equal, for all four directions. Build and run with `scripts/fuzz PortalMessage [seconds]`.
import PhoenixChannel
import PortalMessages

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPortalMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size <= 65_536 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let serverFrame = try? PhoenixInbound<PhoenixRawPayload>(decoding: text) {
        // The dev portal's view: a reply echoes the ref and join_ref and is itself a frame that decodes.
        guard let reply = try? PhoenixInbound<PhoenixRawPayload>(decoding: serverFrame.reply(status: "ok")) else {
            fatalError("a reply does not decode")
        }
        precondition(reply.ref == serverFrame.ref && reply.joinRef == serverFrame.joinRef && reply.topic == serverFrame.topic,
                     "a reply echoes the refs")
    }
    guard let frame = try? PhoenixFrame(decoding: text) else { return 0 }
    guard let again = try? PhoenixFrame(decoding: frame.encoded()) else { fatalError("our encoding of a decoded frame does not decode") }
    precondition(again == frame, "re-encoded frame decodes equal")

    agrees(text, frame) { try ClientIngress(event: $0, payload: $1) }
    agrees(text, frame) { try ClientEgress(event: $0, payload: $1) }
    agrees(text, frame) { try GatewayIngress(event: $0, payload: $1) }
    agrees(text, frame) { try GatewayEgress(event: $0, payload: $1) }
    if let message = try? ClientIngress(event: frame.event, payload: frame.payload) {
        precondition((try? ClientIngress(event: message.event, payload: message.payload)) == message, "client ingress round trip")
    }
    if let message = try? ClientEgress(event: frame.event, payload: frame.payload) {
        precondition((try? ClientEgress(event: message.event, payload: message.payload)) == message, "client egress round trip")
    }
    if let message = try? GatewayIngress(event: frame.event, payload: frame.payload) {
        precondition((try? GatewayIngress(event: message.event, payload: message.payload)) == message, "gateway ingress round trip")
    }
    if let message = try? GatewayEgress(event: frame.event, payload: frame.payload) {
        precondition((try? GatewayEgress(event: message.event, payload: message.payload)) == message, "gateway egress round trip")
    }
    return 0
}

/// A message decoded inside its frame equals the one decoded from the frame's payload text.
func agrees<Message: PhoenixPayload & Equatable>(_ text: String, _ frame: PhoenixFrame, _ fromText: (String, String) throws -> Message) {
    guard case .success(let inFrame)? = try? PhoenixInbound<Message>(decoding: text).payload else { return }
    guard let alone = try? fromText(frame.event, frame.payload) else {
        fatalError("\(Message.self) decoded inside its frame but not from its payload text")
    }
    precondition(alone == inFrame, "\(Message.self): the one-pass decode and the payload-text decode agree")
}
