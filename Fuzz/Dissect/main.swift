// libFuzzer harness for dissect mode's classification of one UDP payload: never crashes, and whatever it
// names agrees with the bytes: STUN only when the de-multiplexer says STUN and with the message type of the
// first word; ChannelData with the channel of the first word inside RFC 5766's range and a length that fits;
// WireGuard only for what `WireGuardMessage.peek` accepts, with its type number.
// Build and run with `scripts/fuzz Dissect [seconds]`.
import Noise
import Replay
import Stun

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDissect(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let payload = UnsafeRawBufferPointer(start: data, count: size)
    let datagram = UnderlayDissector.classify(payload)
    precondition(!datagram.summary.isEmpty, "every datagram is described")
    let firstWord = size >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
    switch datagram.kind {
    case .stun:
        precondition(DatagramKind.classify(payload) == .stun, "STUN only when the de-multiplexer says so")
        precondition(datagram.stunType == firstWord, "the message type is the first word")
    case .channelData:
        let channel = datagram.channel
        precondition(channel == firstWord && (0x4000...0x7FFF).contains(channel ?? 0), "a channel from the first word")
        precondition(4 + (Int(payload[2]) << 8 | Int(payload[3])) <= size, "the length fits the datagram")
        precondition(datagram.inner != nil && datagram.inner != .malformed, "what it carries is named")
    case .wireGuard:
        precondition(WireGuardMessage.peek(payload) != nil, "WireGuard only for what peek accepts")
        precondition(datagram.wireGuardType?.number == Int(payload[0]), "the type number is the first byte")
    case .malformed, .other:
        precondition(datagram.wireGuardType == nil && datagram.channel == nil, "nothing claimed for the unrecognised")
    }
    return 0
}
