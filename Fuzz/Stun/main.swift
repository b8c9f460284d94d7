// libFuzzer harness for the STUN codec: decode arbitrary bytes; whatever decodes must re-encode to a message
// that decodes equal, with valid integrity and fingerprint; verification and classification never crash.
// Build and run with `scripts/fuzz Stun [seconds]`.
import Stun

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStun(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    _ = DatagramKind.classify(UnsafeRawBufferPointer(bytes))
    guard let message = try? StunMessage(decoding: bytes) else { return 0 }
    _ = message.verifyIntegrity(key: [1, 2, 3])
    _ = message.verifyFingerprint()
    // RFC 8489 allows methods up to 0xFFF (first byte up to 0x3F); RFC 7983 demultiplexing, as Firezone does
    // it, only treats first bytes 0–3 as STUN.
    if bytes[0] <= 0x03 {
        precondition(DatagramKind.classify(UnsafeRawBufferPointer(bytes)) == .stun, "a decodable message classifies as STUN")
    }

    let key: [UInt8] = [0x42, 0x42]
    let encoded = message.encode(integrity: .sha1(key: key), fingerprint: true)
    let decoded: StunMessage
    do {
        decoded = try StunMessage(decoding: encoded)
    } catch {
        fatalError("re-encoded message does not decode: \(error)")
    }
    precondition(decoded == message, "re-encoded message decodes equal")
    precondition(decoded.unknownComprehensionRequired.isEmpty, "unknown required attributes are not re-encoded")
    precondition(decoded.verifyIntegrity(key: key), "integrity of our own encoding verifies")
    precondition(decoded.verifyFingerprint() == true, "fingerprint of our own encoding verifies")
    precondition(decoded.encode() == message.encode(), "encoding is deterministic")
    return 0
}
