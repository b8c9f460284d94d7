// libFuzzer harness for ChannelData framing: decoding never crashes; whatever decodes re-encodes to the same
// bytes (within the range this client sends), and the payload range lies inside the datagram.
// Build and run with `scripts/fuzz ChannelData [seconds]`.
import Turn

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChannelData(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let datagram = UnsafeRawBufferPointer(start: data, count: size)
    guard let (channel, payload) = try? ChannelData.decode(datagram) else { return 0 }
    precondition(payload.lowerBound == 4 && payload.upperBound == size, "payload is the rest of the datagram")
    guard ChannelData.channelRange.contains(channel) else { return 0 }
    guard let encoded = try? ChannelData.encode(channel: channel, payload: datagram[payload]) else {
        fatalError("a decoded frame re-encodes")
    }
    precondition(encoded.elementsEqual(datagram), "re-encoding gives the same bytes")
    return 0
}
