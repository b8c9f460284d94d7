// libFuzzer harness for p2p control messages: byte 0 is the kind, the rest the JSON body. Decoding never
// crashes; an event that decodes and can be encoded (4 or 8 proxy IPs) re-encodes into a packet that
// decodes equal. Build and run with `scripts/fuzz P2pControl [seconds]`.
import IpPacket
import P2pControl

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzP2pControl(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1, size <= 1200 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let packet = try? IpPacket.p2pControl(kind: bytes[0], body: bytes.dropFirst()),
          let event = try? P2pControlEvent(packet)
    else { return 0 }
    guard let again = try? event.packet() else { return 0 }  // e.g. an AssignedIps with 3 proxy IPs
    guard let decoded = try? P2pControlEvent(again) else { fatalError("our encoding of a decoded event does not decode") }
    precondition(decoded == event, "re-encoded event decodes equal")
    return 0
}
