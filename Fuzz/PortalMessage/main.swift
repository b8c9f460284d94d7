// libFuzzer harness for portal input: a WebSocket text frame as the portal might send it. Decoding never
// crashes or hangs; a frame that decodes re-encodes into text that decodes equal. (The role messages of §3
// and §4 join this harness when their types land.) Build and run with `scripts/fuzz PortalMessage [seconds]`.
import PhoenixChannel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPortalMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size <= 65_536 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let frame = try? PhoenixFrame(decoding: text) else { return 0 }
    guard let again = try? PhoenixFrame(decoding: frame.encoded()) else { fatalError("our encoding of a decoded frame does not decode") }
    precondition(again == frame, "re-encoded frame decodes equal")
    return 0
}
